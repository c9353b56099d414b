"""A Docker engine that is absent or unreachable with LAB_MODE=docker: one line saying what to do."""

from __future__ import annotations

import os
import subprocess
import sys

from lab_kernel.settings import REPO_ROOT


def _up(tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labctl", "up"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "LAB_MODE": "docker", "LAB_STATE_DIR": str(tmp_path / "lab"), **env},
    )


def test_unreachable_engine_gets_one_line(tmp_path) -> None:
    result = _up(tmp_path, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no Docker engine answers" in lines[0] and "LAB_MODE=host" in lines[0]
    assert "scripts/docker-engine.sh start" in lines[0]
    assert not (tmp_path / "lab" / "mode").exists()


def test_absent_docker_client_gets_one_line(tmp_path) -> None:
    # a PATH with Python but no `docker` at all
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    result = _up(tmp_path, PATH=str(bin_dir))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no Docker engine answers" in result.stderr
