"""Background processes of the lab, each tracked by a PID file so `make down` stops exactly them.

Every process runs in its own session (process group), so stopping it also stops whatever it
spawned. A PID file records the PID and the process start time, so a PID reused by the system after
a reboot is never signalled by mistake.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab_kernel.settings import STATE_DIR

PID_DIR = STATE_DIR / "pids"
LOG_DIR = STATE_DIR / "logs"


class ProcessError(RuntimeError):
    pass


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: the start time in clock ticks since boot; None if gone.

    A zombie (exited, not yet reaped by its parent) counts as gone: it holds no port or memory.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    pid: int
    started: str
    log_file: Path

    @property
    def alive(self) -> bool:
        return _start_time(self.pid) == self.started

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM the process group, SIGKILL it after `timeout`. True if it was running."""
        if not self.alive:
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return True
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not self.alive:
                    _reap(self.pid)
                    # the rest of its group too: a child still exiting may hold the lab's port
                    if not _group_alive(self.pid):
                        return True
                time.sleep(0.1)
        raise ProcessError(f"{self.name} (pid {self.pid}) did not stop")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _pid_file(name: str) -> Path:
    return PID_DIR / f"{name}.json"


def start(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Start `argv` detached, output to .lab/logs/NAME.log, PID recorded in .lab/pids/."""
    _refuse_if_running(name, "run `make down` first")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_file = LOG_DIR / f"{name}.log"
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return _record(name, proc.pid, log_file, {"argv": list(argv)})


def adopt(name: str, pid: int, log_file: Path) -> ManagedProcess:
    """Record a process another command started (leading its own process group), so that
    `make down` stops it too; the caller `forget`s it when the process ends."""
    _refuse_if_running(name, "wait for it or run `make down`")
    return _record(name, pid, log_file)


def _refuse_if_running(name: str, advice: str) -> None:
    if (existing := running(name)) is not None:
        raise ProcessError(f"{name} is already running (pid {existing.pid}); {advice}")


def _record(name: str, pid: int, log_file: Path, extra: dict | None = None) -> ManagedProcess:
    """The PID file: the PID with its start time, so a reused PID is never taken for it."""
    PID_DIR.mkdir(parents=True, exist_ok=True)
    started = _start_time(pid) or ""
    _pid_file(name).write_text(json.dumps({"pid": pid, "started": started, "log": str(log_file), **(extra or {})}))
    return ManagedProcess(name, pid, started, log_file)


def forget(name: str) -> None:
    _pid_file(name).unlink(missing_ok=True)


def running(name: str) -> ManagedProcess | None:
    process = find(name)
    return process if process is not None and process.alive else None


def find(name: str) -> ManagedProcess | None:
    path = _pid_file(name)
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return ManagedProcess(name, record["pid"], record["started"], Path(record["log"]))


def stop(name: str) -> bool:
    process = find(name)
    if process is None:
        return False
    was_running = process.stop()
    _pid_file(name).unlink(missing_ok=True)
    return was_running


def managed() -> list[ManagedProcess]:
    return [p for n in sorted(PID_DIR.glob("*.json")) if (p := find(n.stem))]


def wait_until(
    check: Callable[[], bool],
    what: str,
    timeout: float,
    process: ManagedProcess | None = None,
    interval: float = 0.5,
) -> float:
    """Poll `check` until true, printing progress; returns seconds waited.

    Fails early if `process` dies, with the last lines of its log.
    """
    began = time.monotonic()
    last_note = began
    while True:
        try:
            if check():
                return time.monotonic() - began
        except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
            pass
        now = time.monotonic()
        if process is not None and not process.alive:
            raise ProcessError(f"{what}: the process exited.\n{tail(process.log_file)}")
        if now - began > timeout:
            log = tail(process.log_file) if process else ""
            raise ProcessError(f"{what}: not ready after {timeout:.0f} s.\n{log}")
        if now - last_note >= 5:
            print(f"  ... waiting for {what} ({now - began:.0f} s)", flush=True)
            last_note = now
        time.sleep(interval)


def tail(path: Path, lines: int = 25) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return f"last lines of {path}:\n" + "\n".join(content[-lines:])
