"""The process executor's execution environments as the machine's process table shows them.

An environment is a child the executor forks from a function's zygote (`zygote.py`), so it runs
the zygote's command line and its parent does too; it inherits the zygote's environment block,
which names the function (`AWS_LAMBDA_FUNCTION_NAME`). Read from `/proc` only (stdlib, Linux), for
tools outside LocalStack: the memory benchmark, and the fault experiments that kill environments
from outside as an out-of-memory killer would. A container's processes are in the host's `/proc`
too where the Docker engine runs on the same kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ZYGOTE = "lab_platform/executor/zygote.py"
PROC = Path("/proc")


@dataclass(frozen=True)
class Environment:
    pid: int
    function: str  # AWS_LAMBDA_FUNCTION_NAME


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def parent(pid: int) -> int | None:
    try:
        # the command name in field 2 may hold spaces and parentheses: split after its last ")"
        return int((PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _function(pid: int) -> str:
    try:
        block = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return ""
    for entry in block.split(b"\0"):
        if entry.startswith(b"AWS_LAMBDA_FUNCTION_NAME="):
            return entry.split(b"=", 1)[1].decode(errors="replace")
    return ""


def _descends_from(pid: int, ancestor: int) -> bool:
    seen = 0
    while pid and seen < 64:  # a process table is no deeper than this; guards against a cycle
        if pid == ancestor:
            return True
        pid = parent(pid) or 0
        seen += 1
    return False


def environments(function: str | None = None, under: int | None = None) -> list[Environment]:
    """Execution environments, optionally only `function`'s and only descendants of PID `under`
    (a topology's LocalStack process, or its container's first process)."""
    zygote_code = {int(p.name) for p in PROC.iterdir() if p.name.isdigit() and ZYGOTE in _cmdline(int(p.name))}
    found = []
    for pid in sorted(zygote_code):
        if parent(pid) not in zygote_code:
            continue  # a zygote, not one of its children
        name = _function(pid)
        if function is not None and name != function:
            continue
        if under is not None and not _descends_from(pid, under):
            continue
        found.append(Environment(pid, name))
    return found
