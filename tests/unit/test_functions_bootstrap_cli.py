"""`python -m bootstrap`: clear one-line errors, never a traceback, when LocalStack is not there."""

from __future__ import annotations

import socket
import subprocess
import sys

from lab_kernel.settings import REPO_ROOT


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bootstrap", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_provision_without_localstack_fails_with_one_clear_line(tmp_path):
    url = f"http://127.0.0.1:{unused_port()}"
    result = run("provision", "--localstack-url", url, "--endpoints-file", str(tmp_path / "e.json"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"bootstrap: error: LocalStack at {url} does not answer")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "e.json").exists()


def test_teardown_without_localstack_fails_with_one_clear_line(tmp_path):
    url = f"http://127.0.0.1:{unused_port()}"
    result = run("teardown", "--localstack-url", url, "--endpoints-file", str(tmp_path / "e.json"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"bootstrap: error: LocalStack at {url} does not answer")
    assert "make up" in result.stderr and "Traceback" not in result.stderr


def test_unknown_command_is_refused():
    result = run("deploy")
    assert result.returncode == 2 and "invalid choice: 'deploy'" in result.stderr
