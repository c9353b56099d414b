"""The `process` runtime executor: LocalStack 4.14 runs Python zip functions as local processes.

What the Lambda runtime interface emulator does inside a Docker container, this executor does for
a forked process: it enforces the function timeout, turns handler exceptions into FunctionError
payloads, writes START / END / REPORT around each invocation's logs, and replaces an environment
that crashed or timed out with a fresh one (a new init) on the next invocation.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from localstack import config
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

from lab_platform.executor import interpreters
from lab_platform.executor import zygote as wire
from lab_platform.executor.zygotes import POOL, Zygote

LOG = logging.getLogger(__name__)
# Init (handler import) limit, as AWS's 10 s init phase for on-demand functions.
INIT_TIMEOUT_SECONDS = float(os.environ.get("LAB_EXECUTOR_INIT_TIMEOUT", "10"))


def _zygote_key(version: FunctionVersion) -> str:
    return f"{version.qualified_arn}#{version.config.revision_id}"


def _code_dir(version: FunctionVersion) -> str:
    if version.config.code is None:
        raise LambdaRuntimeException("the process executor runs zip functions only (no image)")
    return str(version.config.code.get_unzipped_code_location())


def _zygote_env(version: FunctionVersion) -> dict[str, str]:
    """The zygote imports modules under the function's own configuration, as its init would."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "AWS_REGION": version.id.region,
        "AWS_DEFAULT_REGION": version.id.region,
        "AWS_LAMBDA_FUNCTION_NAME": version.id.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(version.config.memory_size),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{version.config.runtime}",
    }
    env.update({k: str(v) for k, v in (version.config.environment or {}).items()})
    return env


def _start_zygote(version: FunctionVersion) -> Zygote:
    interpreter = interpreters.interpreter_for(version.config.runtime)
    runtime_lib = interpreters.runtime_library_dir(Path(config.dirs.tmp))
    return Zygote(interpreter.path, _code_dir(version), str(runtime_lib), _zygote_env(version))


# Signal names as Go prints them: AWS's runtime interface is written in Go, and its crash report
# reads "Runtime exited with error: signal: killed" (an out-of-memory kill, a SIGKILL).
GO_SIGNAL_NAMES = {
    signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated", signal.SIGBUS: "bus error", signal.SIGILL: "illegal instruction",
    signal.SIGFPE: "floating point exception", signal.SIGINT: "interrupt", signal.SIGQUIT: "quit",
    signal.SIGPIPE: "broken pipe",
}


def exit_reason(status: int | None) -> str:
    """AWS's words for how a runtime ended mid-invocation, from its wait status."""
    if status is not None and os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"Runtime exited with error: signal: {GO_SIGNAL_NAMES.get(number, f'signal {number}')}"
    if status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status):
        return f"Runtime exited with error: exit status {os.WEXITSTATUS(status)}"
    return "Runtime exited without providing a reason"  # exit status 0, or unknown


def _max_memory_mb(pid: int) -> int:
    # VmHWM of the environment itself; ru_maxrss would report the parent's peak. Read on every
    # invocation (the REPORT line), so with three raw syscalls rather than a text file object's
    # six: each one releases the GIL, and under load every release is a wait to get it back.
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        try:
            status = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        return 0
    start = status.find(b"\nVmHWM:")
    if start < 0:
        return 0
    return math.ceil(int(status[start + 7:status.index(b"\n", start + 1)].split()[0]) / 1024)


class ProcessRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self._env_vars: dict[str, str] = {}
        self._sock: socket.socket | None = None
        self._pid: int | None = None
        self._zygote: Zygote | None = None  # the fork server it came from, which knows how it ended
        self._init_ms: float | None = None
        self._pending_logs = ""  # init logs, written before the first START as on AWS
        self._all_logs: list[str] = []
        self._tmp: Path | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self, env_vars: dict[str, str]) -> None:
        env = {k: str(v) for k, v in env_vars.items()}
        env.update(
            {
                "LAMBDA_TASK_ROOT": _code_dir(self.function_version),
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.function_version.config.runtime}",
                "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "HOME": os.environ.get("HOME", "/tmp"),
            }
        )
        # Its own temporary folder, as each environment on AWS has its own /tmp; removed at stop.
        self._tmp = Path(config.dirs.tmp) / "lab-environments" / self.id
        self._tmp.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(self._tmp)
        self._env_vars = env
        self._spawn()

    def _spawn(self) -> None:
        zygote = POOL.get(_zygote_key(self.function_version), lambda: _start_zygote(self.function_version))
        try:
            sock, pid = zygote.spawn(self._env_vars)
        except Exception:
            # The zygote died (killed, OOM): start a new one once.
            POOL.stop(_zygote_key(self.function_version))
            zygote = POOL.get(_zygote_key(self.function_version), lambda: _start_zygote(self.function_version))
            sock, pid = zygote.spawn(self._env_vars)
        self._sock, self._pid, self._zygote = sock, pid, zygote
        logs: list[str] = []
        sock.settimeout(INIT_TIMEOUT_SECONDS + 5)
        try:
            while True:
                frame = wire.recv_frame(sock)
                if frame["t"] == "log":
                    logs.append(frame["d"])
                elif frame["t"] == "ready":
                    self._init_ms = frame["init_ms"]
                    break
        except (EOFError, OSError) as error:
            self._kill()
            raise LambdaRuntimeException(f"environment {self.id} died during init: {error}") from error
        interpreter = interpreters.interpreter_for(self.function_version.config.runtime)
        if interpreter.substitute:  # said in the function's own log, once per environment (init)
            logs.insert(0, interpreter.warning() + "\n")
        self._pending_logs = "".join(logs)
        self._all_logs.append(self._pending_logs)

    def _kill(self) -> None:
        if self._pid:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._sock:
            self._sock.close()
        self._sock = self._pid = None

    def stop(self) -> None:
        with self._lock:
            self._kill()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    # ------------------------------------------------------------------ invoke
    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        timeout = float(self.function_version.config.timeout)
        memory = self.function_version.config.memory_size
        with self._lock:
            if self._sock is None:
                # The previous invocation crashed or timed out: a fresh environment, a new init.
                self._spawn()
            init_ms, self._init_ms = self._init_ms, None
            logs = [self._pending_logs, f"START RequestId: {request_id} Version: {self.function_version.id.qualifier}\n"]
            self._pending_logs = ""
            began = time.perf_counter()
            deadline = time.time() + timeout
            result_payload, is_error, crashed = self._exchange(payload, request_id, deadline, logs)
            duration_ms = (time.perf_counter() - began) * 1000
            max_memory = _max_memory_mb(self._pid) if self._pid else 0
            ended = self._zygote.exit_status(self._pid) if crashed == "exit" and self._zygote and self._pid else None
            reason = exit_reason(ended)
            if crashed:
                self._kill()
        if crashed == "timeout":
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            logs.append(f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds\n")
            result_payload = json.dumps({
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
            })
        elif crashed == "exit":
            logs.append(f"RequestId: {request_id} Error: {reason}\nRuntime.ExitError\n")
            result_payload = json.dumps({
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: {reason}",
            })
        logs.append(f"END RequestId: {request_id}\n")
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\tMemory Size: {memory} MB\t"
            f"Max Memory Used: {max_memory} MB"
        )
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        logs.append(report + "\t\n")
        text = "".join(logs)
        self._all_logs.append(text)
        del self._all_logs[:-50]
        return InvocationResult(request_id, result_payload.encode(), is_error, text)

    def _exchange(self, payload: dict, request_id: str, deadline: float, logs: list[str]):
        """Send one invocation and read frames until its result; returns (payload, error, crash)."""
        sock = self._sock
        assert sock is not None
        try:
            wire.send_frame(sock, {
                "t": "invoke", "id": request_id, "payload": payload.get("payload") or "",
                "arn": payload.get("invoked-function-arn", ""), "trace": payload.get("trace-id", ""),
                "deadline_ms": int(deadline * 1000),
            })
            while True:
                remaining = deadline - time.time()
                if remaining <= 0:
                    return "", True, "timeout"
                sock.settimeout(remaining)
                frame = wire.recv_frame(sock)
                if frame["t"] == "log":
                    logs.append(frame["d"])
                elif frame["t"] == "result":
                    return frame["payload"], not frame["ok"], None
        except socket.timeout:
            return "", True, "timeout"
        except (EOFError, OSError):
            return "", True, "exit"

    # ------------------------------------------------------------------ addresses
    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        # Environments are local processes: they reach LocalStack on loopback.
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    def get_logs(self) -> str:
        return "".join(self._all_logs)

    # ------------------------------------------------------------------ versions
    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()
        # Fails early and clearly on an unsupported runtime; the zygote then warms up here,
        # so the first invocation pays a fork, not an interpreter start.
        interpreter = interpreters.interpreter_for(function_version.config.runtime)
        if interpreter.substitute:
            LOG.warning("%s: %s", function_version.id.function_name, interpreter.warning())
        POOL.get(_zygote_key(function_version), lambda: _start_zygote(function_version))

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        POOL.stop(_zygote_key(function_version))

    @classmethod
    def validate_environment(cls) -> bool:
        return True
