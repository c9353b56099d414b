"""One fork server (zygote) per function version, started on the function's own interpreter."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from lab_platform.executor import zygote as wire

LOG = logging.getLogger(__name__)
ZYGOTE_SCRIPT = str(Path(wire.__file__).resolve())

# Modules worth importing once in the zygote, if the function ships them (or the runtime
# provides them): most of a cold start is spent importing these. The handler module itself is
# never preloaded: its init code runs in every environment, as on AWS.
DEFAULT_PRELOAD = (
    "json,logging,urllib.request,http.client,ssl,uuid,decimal,"
    "boto3,botocore.session,botocore.client,botocore.config,botocore.exceptions,"
    "requests,urllib3,"
    "aws_lambda_powertools,aws_lambda_powertools.logging,aws_lambda_powertools.metrics,"
    "aws_lambda_powertools.utilities.parameters,aws_lambda_powertools.utilities.batch,"
    "aws_lambda_powertools.utilities.data_classes,aws_lambda_powertools.event_handler,"
    "tenacity,pybreaker"
)


# How much of the zygote's memory environments share (README: "Memory").
SHARE_PAGES_CHOICES = ("immortal", "frozen", "off")


class ZygoteError(RuntimeError):
    pass


class Zygote:
    def __init__(self, interpreter: str, code_dir: str, runtime_lib: str, env: dict[str, str]) -> None:
        self.code_dir = code_dir
        self._lock = threading.Lock()
        preload = os.environ.get("LAB_EXECUTOR_PRELOAD", DEFAULT_PRELOAD)
        share_pages = os.environ.get("LAB_EXECUTOR_SHARE_PAGES", "immortal")
        if share_pages not in SHARE_PAGES_CHOICES:
            raise ZygoteError(f"LAB_EXECUTOR_SHARE_PAGES={share_pages!r}: use one of {', '.join(SHARE_PAGES_CHOICES)}")
        parent, child = socket.socketpair()
        argv = [interpreter, "-I", "-S", ZYGOTE_SCRIPT, "--code", code_dir,
                "--runtime-lib", runtime_lib, "--control-fd", str(child.fileno()),
                "--preload", preload,
                "--share-botocore-loader", os.environ.get("LAB_EXECUTOR_SHARE_BOTOCORE_LOADER", "1"),
                "--share-pages", share_pages]
        began = time.perf_counter()
        self.process = subprocess.Popen(
            argv, pass_fds=[child.fileno()], env=env, cwd=code_dir,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        child.close()
        self.control = parent
        self.control.settimeout(120)
        try:
            hello = wire.recv_frame(self.control)
        except (EOFError, OSError) as error:
            self.stop()
            raise ZygoteError(f"zygote for {code_dir} failed to start: {error}") from error
        self.control.settimeout(None)
        LOG.debug("zygote %s ready in %.0f ms, preloaded %s", hello.get("pid"),
                  (time.perf_counter() - began) * 1000, hello.get("preloaded"))
        if hello.get("threads", 1) > 1:
            LOG.warning("zygote for %s has %s threads after preload; forking may be unsafe",
                        code_dir, hello["threads"])

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def spawn(self, env: dict[str, str]) -> tuple[socket.socket, int]:
        """Fork one execution environment; returns LocalStack's end of its socket and its pid."""
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                wire.send_frame(self.control, {"op": "spawn", "env": env}, fds=[theirs.fileno()])
                reply = wire.recv_frame(self.control)
        except (EOFError, OSError) as error:
            ours.close()
            raise ZygoteError(f"zygote for {self.code_dir} is gone: {error}") from error
        finally:
            theirs.close()
        if "pid" not in reply:
            ours.close()
            raise ZygoteError(f"zygote refused to spawn: {reply.get('error')}")
        return ours, reply["pid"]

    def exit_status(self, pid: int) -> int | None:
        """How environment `pid` ended (its wait status), or None when the zygote cannot say."""
        try:
            with self._lock:
                wire.send_frame(self.control, {"op": "exit_status", "pid": pid})
                return wire.recv_frame(self.control).get("status")
        except (EOFError, OSError):
            return None

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the zygote and all its environments
        except ProcessLookupError:
            pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.control.close()


class ZygotePool:
    """Zygotes by function version revision; a code or configuration update gets a new one."""

    def __init__(self) -> None:
        self._zygotes: dict[str, Zygote] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        atexit.register(self.stop_all)

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: str, factory) -> Zygote:
        with self._lock_for(key):
            zygote = self._zygotes.get(key)
            if zygote is None or not zygote.alive:
                if zygote is not None:
                    zygote.stop()
                zygote = factory()
                self._zygotes[key] = zygote
            return zygote

    def stop(self, key: str) -> None:
        with self._lock_for(key):
            zygote = self._zygotes.pop(key, None)
        if zygote:
            zygote.stop()

    def stop_all(self) -> None:
        with self._guard:
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        for zygote in zygotes:
            zygote.stop()


POOL = ZygotePool()
