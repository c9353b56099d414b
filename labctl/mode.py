"""Which way the lab runs: Docker Compose where a Docker engine answers, else host processes."""

from __future__ import annotations

import os
import shutil
import subprocess

from lab_kernel.settings import STATE_DIR, SettingsError

MODES = ("docker", "host")
MODE_FILE = STATE_DIR / "mode"


def docker_engine_answers(timeout: float = 5) -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, timeout=timeout,
        ).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise SettingsError("Docker Compose not found: `bash scripts/install-system-deps.sh docker-compose`, "
                        "or install the compose plugin, or run LAB_MODE=host make up")


def choose() -> str:
    wanted = os.environ.get("LAB_MODE", "").strip().lower()
    if wanted and wanted not in MODES:
        raise SettingsError(f"LAB_MODE={wanted!r} is not a mode: use LAB_MODE=docker or LAB_MODE=host")
    if wanted == "docker" and not docker_engine_answers():
        raise SettingsError("LAB_MODE=docker but no Docker engine answers: start Docker "
                            "(as root on Debian: `bash scripts/docker-engine.sh start`), or use LAB_MODE=host")
    return wanted or ("docker" if docker_engine_answers() else "host")


def remember(mode: str) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    MODE_FILE.write_text(mode)


def last() -> str | None:
    return MODE_FILE.read_text().strip() if MODE_FILE.exists() else None
