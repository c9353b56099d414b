"""Which local interpreter runs a Lambda runtime, and the libraries the runtime provides.

`python3.13` -> `LAB_RUNTIME_PYTHON3_13` if set, else `python3.13` on PATH, else a pyenv
installation. pyenv shims are resolved to the real binary once, so no shim script runs per
environment.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import shutil
import subprocess
import threading
from pathlib import Path

# Packages AWS's Python runtimes provide beside the function's code (/var/runtime).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")

_lock = threading.Lock()


class UnsupportedRuntime(Exception):
    pass


@functools.cache
def interpreter_for(runtime: str) -> str:
    if not runtime or not runtime.startswith("python3."):
        raise UnsupportedRuntime(
            f"runtime {runtime!r} is not supported by the process executor (Python 3 zip functions only)"
        )
    version = runtime.removeprefix("python")
    env_key = "LAB_RUNTIME_" + runtime.upper().replace(".", "_")
    candidates = [os.environ.get(env_key, ""), shutil.which(runtime) or ""]
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
    raise UnsupportedRuntime(
        f"no interpreter for runtime {runtime}: install Python {version} or set {env_key}=/path/to/{runtime}"
    )


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
