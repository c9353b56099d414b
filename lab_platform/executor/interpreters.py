"""Which local interpreter runs a Lambda runtime, and the libraries the runtime provides.

`python3.13` -> `LAB_RUNTIME_PYTHON3_13` if set, else `python3.13` on PATH, else a pyenv
installation. pyenv shims are resolved to the real binary once, so no shim script runs per
environment. A runtime from python3.9 on with no interpreter of its own runs on the nearest newer
one found the same way, with a one-line warning in LocalStack's log and in each environment's
init log (AWS would run it on its own version: the difference is said, not hidden). A runtime with
no interpreter at all, or one the executor does not serve, is refused when the function is created
or its runtime changed (`runtime_check.py`), with one line saying what to install.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

# Packages AWS's Python runtimes provide beside the function's code (/var/runtime).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")

_lock = threading.Lock()


class UnsupportedRuntime(Exception):
    """A runtime the executor cannot serve on this machine; the message says what to install."""


# AWS's Python runtimes that the executor serves (AWS no longer creates python3.8 functions). A
# runtime with no interpreter of its own runs on the nearest newer one, with a warning.
OLDEST = (3, 9)
NEWEST_KNOWN = (3, 14)


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # the interpreter's own X.Y
    runtime: str  # the function's runtime, e.g. python3.9

    @property
    def substitute(self) -> bool:
        return self.version != self.runtime.removeprefix("python")

    def warning(self) -> str:
        """One line for the function's log and LocalStack's, when this is a stand-in."""
        wanted = self.runtime.removeprefix("python")
        return (f"[lab] runtime {self.runtime} runs on Python {self.version} here: no Python {wanted} found "
                f"(install it, e.g. `pyenv install {wanted}`, or set {_env_key(self.runtime)})")


def _env_key(runtime: str) -> str:
    return "LAB_RUNTIME_" + runtime.upper().replace(".", "_")


def _version(runtime: str) -> tuple[int, int] | None:
    major, _, minor = runtime.removeprefix("python").partition(".")
    if not runtime.startswith("python") or not major.isdigit() or not minor.isdigit():
        return None
    return int(major), int(minor)


def _find(runtime: str) -> str | None:
    """`LAB_RUNTIME_PYTHONX_Y`, then `pythonX.Y` on PATH, then pyenv; the real binary, checked."""
    version = runtime.removeprefix("python")
    candidates = [os.environ.get(_env_key(runtime), ""), shutil.which(runtime) or ""]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/{runtime}")))
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=20, check=True,
            ).stdout.split()
        except (OSError, subprocess.SubprocessError):
            continue
        if len(out) == 2 and out[1] == version:
            return out[0]
    return None


@functools.cache
def interpreter_for(runtime: str) -> Interpreter:
    wanted = _version(runtime or "")
    if wanted is None or wanted[0] != 3:
        raise UnsupportedRuntime(
            f"runtime {runtime!r} is not served by the lab's process executor: it runs Python zip functions "
            f"(python{OLDEST[0]}.{OLDEST[1]} and later)"
        )
    if wanted < OLDEST:
        raise UnsupportedRuntime(
            f"runtime {runtime} is deprecated: AWS no longer creates functions on it; "
            f"use python{OLDEST[0]}.{OLDEST[1]} or later"
        )
    path = _find(runtime)
    if path is not None:
        return Interpreter(path, f"{wanted[0]}.{wanted[1]}", runtime)
    for minor in range(wanted[1] + 1, max(NEWEST_KNOWN[1], wanted[1]) + 1):
        path = _find(f"python3.{minor}")
        if path is not None:
            return Interpreter(path, f"3.{minor}", runtime)
    version = runtime.removeprefix("python")
    raise UnsupportedRuntime(
        f"no interpreter for runtime {runtime} (nor a newer Python 3): install Python {version} "
        f"(e.g. `pyenv install {version}` or the python{version} package) or set {_env_key(runtime)}=/path/to/{runtime}"
    )


def served() -> dict[str, Interpreter | None]:
    """Every AWS Python runtime from the oldest served to the newest known -> what runs it here."""
    out: dict[str, Interpreter | None] = {}
    for minor in range(OLDEST[1], NEWEST_KNOWN[1] + 1):
        try:
            out[f"python3.{minor}"] = interpreter_for(f"python3.{minor}")
        except UnsupportedRuntime:
            out[f"python3.{minor}"] = None
    return out


def describe_served() -> str:
    """One line for LocalStack's start-up log, e.g. `python3.9 on 3.13 (stand-in), ..., python3.13`."""
    parts = []
    for runtime, interpreter in served().items():
        if interpreter is None:
            parts.append(f"{runtime} refused (no Python {runtime.removeprefix('python')} or newer)")
        elif interpreter.substitute:
            parts.append(f"{runtime} on {interpreter.version} (stand-in)")
        else:
            parts.append(runtime)
    return ", ".join(parts)


def runtime_library_dir(base: Path) -> Path:
    """A folder of links to the runtime-provided packages, put on the path after the code.

    The packages are pure Python; linking them from LocalStack's environment costs nothing and
    gives functions the pinned boto3 that AWS would provide, and nothing else of LocalStack's.
    """
    target = base / "lab-lambda-runtime"
    with _lock:
        if (target / ".complete").exists():
            return target
        target.mkdir(parents=True, exist_ok=True)
        for name in RUNTIME_PROVIDED:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                continue
            origin = Path(spec.origin)
            source = origin.parent if origin.name == "__init__.py" else origin
            link = target / source.name
            if not link.exists():
                link.symlink_to(source)
        (target / ".complete").touch()
    return target
