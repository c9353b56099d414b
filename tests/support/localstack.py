"""A real LocalStack 4.14 for tests: a container of the lab's image where a Docker engine answers
(compose mode's LocalStack, started through testcontainers), else a host process (host mode's).

Each instance gets a free port (and a host process its own state folder), so test runs never
touch a running lab. LAB_TEST_LOCALSTACK=host|container forces one kind (default_kind).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from labctl.localstack_host import is_ready, lab_settings, localstack_environment
from lab_kernel.settings import REPO_ROOT, Settings

DEFAULT_ACCOUNT = "000000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def docker_reachable() -> bool:
    if os.environ.get("LAB_MODE") == "host":
        return False
    try:
        import docker  # testcontainers' dependency

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means no usable engine
        return False


@dataclass
class LocalStackInstance:
    url: str
    log_file: Path | None = None
    pid: int | None = None  # host mode: the LocalStack process
    _stop: Any = field(default=None, repr=False)
    _logs: Any = field(default=None, repr=False)  # a container's logs

    def client(self, service: str, account: str = DEFAULT_ACCOUNT, region: str = "us-east-1", **kw):
        """A boto3 client for `account` (LocalStack maps a 12-digit access key to that account)."""
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=account,
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 0}, read_timeout=kw.pop("read_timeout", 120)),
            **kw,
        )

    def logs(self) -> str:
        if self._logs:
            return self._logs()
        return self.log_file.read_text(errors="replace") if self.log_file else ""

    def stop(self) -> None:
        if self._stop:
            self._stop()
            self._stop = None


def start_host(extra_env: dict[str, str] | None = None, timeout: float = 90) -> LocalStackInstance:
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix="lab-test-localstack-"))
    env = localstack_environment(Settings.load(), state, port)
    env.update(extra_env or {})
    log_file = state / "localstack.log"
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localstack.runtime.main"],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def stop() -> None:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # the process group may hold stragglers even after the leader exited
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if not os.environ.get("LAB_KEEP_TEST_STATE"):
            shutil.rmtree(state, ignore_errors=True)

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"LocalStack exited at start:\n{log_file.read_text()[-3000:]}")
        try:
            if is_ready(url):
                break
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"LocalStack not healthy after {timeout} s")
        time.sleep(0.3)
    return LocalStackInstance(url=url, log_file=log_file, pid=proc.pid, _stop=stop)


# The lab's LocalStack image is built once per test session (labctl/images.py: the same build
# path as `make up`; cached layers make it seconds when nothing changed).
_built_image: str | None = None


def lab_image() -> str:
    global _built_image
    if _built_image is None:
        from labctl import images

        _built_image = images.build_all(Settings.load(), ("localstack",))["localstack"]
    return _built_image


def container_environment(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The lab's LocalStack settings, as host mode sets them, plus the test's own."""
    return {**lab_settings(Settings.load()), **(extra_env or {})}


def start_container(extra_env: dict[str, str] | None = None, timeout: float = 90) -> LocalStackInstance:
    """The lab's LocalStack image (docker/localstack) through testcontainers, on 127.0.0.1 only."""
    # Ryuk, testcontainers' reaper, is an image pulled from Docker Hub: none answers on offline
    # machines. The session fixture stops every container it started instead (conftest.py).
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer

    port = free_port()
    container = DockerContainer(lab_image(), env=container_environment(extra_env))
    # Published on loopback only, like every port of the lab. with_bind_ports takes no host
    # address, so the mapping goes in as docker-py's (address, port) form, which it passes on.
    container.ports["4566/tcp"] = ("127.0.0.1", port)
    container.start()
    url = f"http://127.0.0.1:{port}"

    def logs() -> str:
        out, err = container.get_logs()
        return (out + err).decode(errors="replace")

    deadline = time.monotonic() + timeout
    while True:
        try:
            if is_ready(url):
                break
        except Exception:  # noqa: BLE001 - not up yet
            pass
        container.get_wrapped_container().reload()
        if container.get_wrapped_container().status == "exited" or time.monotonic() > deadline:
            text = logs()
            container.stop()
            raise RuntimeError(f"LocalStack container not healthy after {timeout} s:\n{text[-3000:]}")
        time.sleep(0.3)
    return LocalStackInstance(url=url, _stop=container.stop, _logs=logs)


def default_kind() -> str:
    """Where the fixtures run LocalStack: `container` (the lab's image, testcontainers) where a
    Docker engine answers, else `host`. LAB_TEST_LOCALSTACK=host|container forces one."""
    wanted = os.environ.get("LAB_TEST_LOCALSTACK", "").strip().lower()
    if wanted in ("host", "container"):
        return wanted
    return "container" if docker_reachable() else "host"


def start(extra_env: dict[str, str] | None = None, kind: str | None = None) -> LocalStackInstance:
    return start_container(extra_env) if (kind or default_kind()) == "container" else start_host(extra_env)
