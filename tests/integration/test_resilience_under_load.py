"""Faults under load lose nothing (issue #19, point 2): `python -m resilience.under_load`, the
command behind `make verify-load`, against a lab of its own brought up with `make up` (own state
folder, own ports, host mode: the sigkill fault reads the environments' processes).

Every fault runs for real in a load on both topologies: crash mode at 10%, environments SIGKILLed
from outside, the courier answering 503, the kill switch on and off. The load is a short profile
(90 s at up to 5 orders/s) instead of smoke's 5.3 minutes, so the four loads and their drains take
about 20 minutes; what is checked is what `make verify-load` checks: per fault and topology, the
fault took effect, nothing is lost, and accepted = delivered + dead-lettered + in flight.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab_kernel.settings import REPO_ROOT
from resilience.under_load import FAULTS
from tests.support.localstack import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PORT_KEYS = ("LAB_LOCALSTACK_PORT", "LAB_LOCALSTACK_FLOW_CONTROL_PORT", "LAB_PROMETHEUS_PORT",
             "LAB_GRAFANA_PORT", "LAB_LOCUST_PORT", "LAB_LOCUST_METRICS_PORT")
PROFILES = """
[profiles.fault-check]
description = "a short steady load for the fault experiments' test"
phases = [
    { name = "warm up", duration = 10, rate = 2 },
    { name = "steady", duration = 80, rate = 5 },
]
"""


def _make(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.timeout(3000)
def test_every_fault_under_load_ends_with_every_order_counted(tmp_path: Path):
    ports = {key: str(free_port()) for key in PORT_KEYS}
    state = tmp_path / "lab"
    env = {**os.environ, **ports, "LAB_MODE": "host", "LAB_STATE_DIR": str(state)}
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(PROFILES)
    reports = tmp_path / "reports"
    try:
        up = _make(env, "up", timeout=900)
        assert up.returncode == 0, (up.stdout + up.stderr)[-3000:]
        run = subprocess.run(
            [sys.executable, "-m", "resilience.under_load", "--profile", "fault-check",
             "--profiles-file", str(profiles), "--start", "15", "--quiet", "90",
             "--endpoints", str(state / "endpoints.json"), "--reports", str(reports)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=2700, stdin=subprocess.DEVNULL)
        out = run.stdout + run.stderr
        print(out[-8000:])
        assert run.returncode == 0, out[-4000:]

        session = next(reports.glob("faults-*"))
        summary = json.loads((session / "summary.json").read_text())
        assert [entry["fault"] for entry in summary] == list(FAULTS)
        for entry in summary:
            assert entry["passed"], entry
            assert set(entry["ledgers"]) == {"no-flow-control", "flow-control"}
            for topology, ledger in entry["ledgers"].items():
                accepted = sum(ledger.values())
                assert accepted >= 300, (entry["fault"], topology, ledger)  # about 420 sent per load
                assert ledger["lost"] == 0 and entry["lost_decidable"][topology]
                assert accepted == ledger["delivered"] + ledger["dead_lettered"] + ledger["in_flight"]
            # the fault really applied in each topology: a count above zero
            for topology, effect in entry["effect"].items():
                if entry["fault"] == "kill-switch":
                    assert "switch on" in effect, effect
                else:
                    assert int(re.match(r"(\d+) ", effect).group(1)) > 0, (entry["fault"], topology, effect)
            # each fault's run has its own report, with the ledger and the fault's criteria in it
            report = Path(entry["report"]).read_text()
            assert f"{entry['fault']}: no order lost" in report
        table = (session / "summary.md").read_text()
        assert table.count("| PASS |") == 2 * len(FAULTS)
    finally:
        down = _make(env, "down", timeout=300)
        assert down.returncode == 0, down.stderr[-2000:]
