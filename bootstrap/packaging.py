"""Package each function the way `sam build` does: pinned wheels for the Lambda platform + code.

A function's zip holds its pinned dependencies (manylinux wheels for CPython 3.13, whatever the
host is), its own folder under `lambdas/`, and every package folder under `lambdas/common/`.
boto3 is not bundled: the Lambda runtime provides it (the lab's process executor puts a pinned
boto3 on the function's path, as AWS's runtime does).

Builds are cached by a hash of every input, and zips are byte-for-byte reproducible (sorted
entries, fixed timestamps, no bytecode), so an unchanged function keeps its CodeSha256 and
provisioning has nothing to update.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bootstrap.progress import Progress
from bootstrap.topology import FUNCTION_FOLDERS

REPO_ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = REPO_ROOT / "lambdas"
COMMON_DIR = LAMBDAS_DIR / "common"
BUILD_DIR = REPO_ROOT / "build"
LAB_LOCK = REPO_ROOT / "constraints" / "lab-lock.txt"
# The Lambda python3.13 x86_64 platform, as `sam build` targets it.
PIP_PLATFORM_ARGS = (
    "--python-version", "3.13",
    "--only-binary=:all:",
    "--implementation", "cp",
    "--platform", "manylinux2014_x86_64",
)
# Provided by the runtime; if a dependency drags them in they are dropped from the zip.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
_EXCLUDED_DIRS = {"__pycache__", "tests", "bin"}
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class PackagingError(RuntimeError):
    """A function could not be packaged; the message says which and why."""


@dataclass(frozen=True)
class Package:
    function_name: str
    zip_path: Path
    code_sha256: str  # base64 SHA-256, the form Lambda reports as CodeSha256
    size: int
    cached: bool

    def read(self) -> bytes:
        return self.zip_path.read_bytes()


def _files(root: Path) -> Iterator[Path]:
    """Files under root that belong in a package, in a stable order."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _EXCLUDED_DIRS for part in relative.parts[:-1]):
            continue
        if path.is_file() and not path.name.endswith(_EXCLUDED_SUFFIXES):
            yield path


def common_packages(common_dir: Path = COMMON_DIR) -> list[Path]:
    """Every package folder (one with an __init__.py) directly under lambdas/common/."""
    if not common_dir.is_dir():
        return []
    return sorted(p for p in common_dir.iterdir() if p.is_dir() and (p / "__init__.py").is_file())


def requirement_files(function_dir: Path, common_dir: Path = COMMON_DIR) -> list[Path]:
    files = [function_dir / "requirements.txt"]
    if (common_dir / "requirements.txt").is_file():
        files.append(common_dir / "requirements.txt")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise PackagingError(f"missing {', '.join(missing)}: every function pins its dependencies")
    return files


def inputs_digest(function_dir: Path, common_dir: Path = COMMON_DIR, lock: Path = LAB_LOCK) -> str:
    """SHA-256 over everything that decides the zip's content."""
    digest = hashlib.sha256()
    digest.update(repr(PIP_PLATFORM_ARGS + RUNTIME_PROVIDED).encode())
    sources = [(function_dir, p) for p in _files(function_dir)]
    for package in common_packages(common_dir):
        sources += [(common_dir, p) for p in _files(package)]
    sources += [(common_dir, p) for p in requirement_files(function_dir, common_dir)[1:]]
    if lock.is_file():
        sources.append((lock.parent, lock))
    for root, path in sources:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _has_requirements(path: Path) -> bool:
    return any(line.split("#", 1)[0].strip() for line in path.read_text().splitlines())


def _pip_install(requirements: list[Path], target: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--target", str(target), *PIP_PLATFORM_ARGS,
    ]
    for requirement in requirements:
        command += ["-r", str(requirement)]
    if LAB_LOCK.is_file():
        command += ["-c", str(LAB_LOCK)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackagingError(
            f"pip could not install {', '.join(map(str, requirements))}:\n{result.stderr[-3000:]}"
        )


def _write_zip(zip_path: Path, entries: list[tuple[str, Path]]) -> None:
    """A reproducible zip: same inputs, same bytes."""
    tmp = zip_path.with_suffix(f".zip.tmp{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for arcname, path in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    tmp.replace(zip_path)


def _code_sha256(zip_path: Path) -> str:
    return base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()


def build(
    function_name: str,
    progress: Progress | None = None,
    lambdas_dir: Path = LAMBDAS_DIR,
    build_dir: Path = BUILD_DIR,
) -> Package:
    """Build (or reuse) the zip of one function; safe against concurrent builders."""
    progress = progress or Progress()
    folder = FUNCTION_FOLDERS.get(function_name)
    if folder is None:
        raise PackagingError(f"unknown function {function_name!r}: expected one of {sorted(FUNCTION_FOLDERS)}")
    function_dir = lambdas_dir / folder
    common_dir = lambdas_dir / "common"
    if not (function_dir / "app.py").is_file():
        raise PackagingError(f"{function_dir}/app.py is missing")
    build_dir.mkdir(parents=True, exist_ok=True)
    zip_path = build_dir / f"{folder}.zip"
    stamp = build_dir / f"{folder}.inputs-sha256"
    digest = inputs_digest(function_dir, common_dir)

    # Several developers and test sessions share build/: one builder per function at a time.
    with open(build_dir / f".{folder}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if zip_path.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
            package = Package(function_name, zip_path, _code_sha256(zip_path), zip_path.stat().st_size, True)
            progress.record("package", function_name, "cached", f"{package.size / 1e6:.1f} MB, inputs {digest[:12]}")
            return package

        progress.say(f"  [package] {function_name}: pip install of {folder}/requirements.txt ...")
        target = build_dir / folder
        staging = build_dir / f".{folder}.staging{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        requirements = requirement_files(function_dir, common_dir)
        if any(_has_requirements(r) for r in requirements):
            _pip_install(requirements, staging)
        else:
            staging.mkdir(parents=True)
        for provided in RUNTIME_PROVIDED:
            for leftover in staging.glob(f"{provided}*"):
                progress.say(f"  [package] {function_name}: dropping {leftover.name} (the runtime provides it)")
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)

        entries = [(str(p.relative_to(target)), p) for p in _files(target)]
        entries += [(str(p.relative_to(function_dir)), p) for p in _files(function_dir)]
        for package_dir in common_packages(common_dir):
            entries += [(str(p.relative_to(common_dir)), p) for p in _files(package_dir)]
        clashes = sorted(n for n, count in Counter(n for n, _ in entries).items() if count > 1)
        if clashes:
            raise PackagingError(f"{function_name}: files clash in the zip: {clashes[:5]}")
        _write_zip(zip_path, entries)
        stamp.write_text(digest + "\n")
        package = Package(function_name, zip_path, _code_sha256(zip_path), zip_path.stat().st_size, False)
        progress.record("package", function_name, "built", f"{package.size / 1e6:.1f} MB, {len(entries)} files")
        return package


def build_all(progress: Progress | None = None) -> dict[str, Package]:
    return {name: build(name, progress) for name in FUNCTION_FOLDERS}
