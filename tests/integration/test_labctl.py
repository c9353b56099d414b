"""`make up` / `make down` in host mode, as a workshop attendee runs them (a second lab beside
any running one: own state folder, own ports)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from lab_kernel.settings import REPO_ROOT
from tests.support.localstack import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _bound(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _labctl(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labctl", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_up_prints_steps_and_urls_then_down_leaves_nothing_behind(tmp_path):
    ports = {key: str(free_port()) for key in ("LAB_LOCALSTACK_PORT", "LAB_LOCALSTACK_FLOW_CONTROL_PORT", "LAB_PROMETHEUS_PORT",
                                               "LAB_GRAFANA_PORT", "LAB_LOCUST_PORT", "LAB_LOCUST_METRICS_PORT")}
    env = {**os.environ, **ports, "LAB_MODE": "host", "LAB_STATE_DIR": str(tmp_path / "lab")}
    up = _labctl(env, "up")
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        out = up.stdout
        assert "==> starting LocalStack 4.14.0" in out
        assert "==> provisioning no-flow-control, flow-control (bootstrap" in out  # the default pair
        # one LocalStack per topology, each hosting its own
        assert f"LocalStack   http://127.0.0.1:{ports['LAB_LOCALSTACK_PORT']}   (no-flow-control)" in out
        assert f"LocalStack   http://127.0.0.1:{ports['LAB_LOCALSTACK_FLOW_CONTROL_PORT']}   (flow-control)" in out
        assert f"Prometheus   http://127.0.0.1:{ports['LAB_PROMETHEUS_PORT']}" in out
        assert str(tmp_path / "lab" / "logs") in out
        endpoints = json.loads((tmp_path / "lab" / "endpoints.json").read_text())
        assert set(endpoints["topologies"]) == {"no-flow-control", "flow-control"}
        assert {name: t["localstack_url"] for name, t in endpoints["topologies"].items()} == {
            "no-flow-control": f"http://127.0.0.1:{ports['LAB_LOCALSTACK_PORT']}",
            "flow-control": f"http://127.0.0.1:{ports['LAB_LOCALSTACK_FLOW_CONTROL_PORT']}",
        }
        pids = [json.loads(p.read_text())["pid"] for p in (tmp_path / "lab" / "pids").glob("*.json")]
        assert len(pids) == 3 and all(_alive(p) for p in pids)  # two LocalStacks and Prometheus
        status = _labctl(env, "status")
        assert "localstack" in status.stdout and "running" in status.stdout

        again = _labctl(env, "up")
        assert again.returncode == 2 and "already up" in again.stderr
    finally:
        down = _labctl(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped: " in down.stdout and "localstack" in down.stdout
    assert not any(_alive(p) for p in pids)
    assert not any(_bound(int(port)) for port in ports.values())
    assert not list((tmp_path / "lab" / "pids").glob("*.json"))
