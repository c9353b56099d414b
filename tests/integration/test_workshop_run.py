"""The workshop's long commands, run as an attendee runs them (docs/WORKSHOP.md), on the smoke
profile: `make experiment` on a stopped lab, then `make report`, `make story`, `make preview`,
`make status` and `make down`; and the courier's API key is in none of what the run wrote. A second lab beside any running one: own state folder, own ports.

`make load PROFILE=smoke` is the same `python -m load run --profile smoke --topology both` the
experiment runs (its progress lines are checked here); its own behaviour is tests/integration/
test_load_smoke.py. This test takes about 20 minutes: the flow-control backlog drains at about
4 orders/s after the load, as on AWS.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

from lab_kernel.settings import REPO_ROOT
from tests.support.localstack import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PORT_KEYS = ("LAB_LOCALSTACK_PORT", "LAB_LOCALSTACK_FLOW_CONTROL_PORT", "LAB_PROMETHEUS_PORT",
             "LAB_GRAFANA_PORT", "LAB_LOCUST_PORT", "LAB_LOCUST_METRICS_PORT")


def _bound(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _make(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _aws(service: str, port: str, account: str):
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=account, aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 2}))


def _api_key(port: str, account: str) -> str:
    secret = _aws("secretsmanager", port, account).get_secret_value(SecretId="/sls-observe/delivery/api-key")
    return secret["SecretString"]


def _function_logs(port: str, account: str) -> str:
    """Every line of every function's log group in the account."""
    logs = _aws("logs", port, account)
    lines = []
    for group in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="/aws/lambda/"):
        for entry in group["logGroups"]:
            for page in logs.get_paginator("filter_log_events").paginate(logGroupName=entry["logGroupName"]):
                lines.extend(event["message"] for event in page["events"])
    return "\n".join(lines)


def _lab_logs(state: Path) -> dict[str, str]:
    return {f"lab log {path.name}": path.read_text(errors="replace") for path in (state / "logs").glob("*.log")}


def _report_files(folder: Path) -> dict[str, str]:
    """The run's report folder: report, JSON summary, Locust CSV/HTML, plots."""
    return {f"report file {path.name}": path.read_bytes().decode(errors="replace")
            for path in folder.parent.rglob("*") if path.is_file()}


def _get(url: str) -> str:
    return requests.get(url, timeout=60).text


def _prometheus_series(port: str) -> str:
    """Every label of every series Prometheus holds."""
    return _get(f"http://127.0.0.1:{port}/api/v1/series?match[]=%7B__name__%3D~%22.%2B%22%7D")


@pytest.mark.timeout(3000)
def test_make_experiment_from_a_stopped_lab_then_the_workshop_commands(tmp_path: Path):
    ports = {key: str(free_port()) for key in PORT_KEYS}
    state = tmp_path / "lab"
    # Side by side, forced: whether `auto` runs the topologies in turns depends on what else the
    # machine is doing at that minute, and in turns doubles this test's 20 minutes; the choice
    # itself is tests/integration/test_experiment_in_turns.py's.
    env = {**os.environ, **ports, "LAB_MODE": "host", "LAB_STATE_DIR": str(state),
           "EXPERIMENT_ORDER": "side-by-side"}
    try:
        run = _make(env, "experiment", timeout=2700)
        out = run.stdout + run.stderr
        print(out[-6000:])
        # one command from a stopped lab: it says it brings the lab up, and does
        assert "the lab is not up: bringing it up first (make up)" in out
        assert "==> provisioning no-flow-control, flow-control (bootstrap" in out  # the default pair
        # it ran the smoke profile on both topologies and drained
        assert re.search(r"phase 4/4 'sustained overload' target 15\.00 req/s", out)
        assert "draining" in out
        # the verdict table, each criterion with the simulation's prediction and its source
        assert re.search(r"topology\s+criterion\s+predicted\s+measured\s+source\s+holds", out)
        assert re.search(r"flow-control\s+lost = 0\s+0\s+\S+\s+ledger\s+(yes|NO)", out)
        # 0 reproduced, 1 not: either way a verdict (2 would be "could not run")
        assert run.returncode in (0, 1), out[-3000:]
        assert ("REPRODUCED" in out) == (run.returncode == 0)
        folder = Path(re.search(r"report: (\S+/report\.md)", out).group(1))
        report = (folder if folder.is_absolute() else REPO_ROOT / folder).read_text()
        assert "| topology | criterion | predicted (simulation) | measured | source | holds |" in report
        assert "## Measured vs simulated" in report and "actual success, load window" in report
        summary = json.loads(((folder if folder.is_absolute() else REPO_ROOT / folder).parent / "report.json").read_text())
        assert summary["reproduced"] == (run.returncode == 0)
        assert summary["topologies"]["flow-control"]["ledger"]["lost"] == 0

        # an order's story: one the courier recorded in the no-flow-control account
        dynamodb = _aws("dynamodb", ports["LAB_LOCALSTACK_PORT"], "111111111111")
        item = dynamodb.scan(TableName="CourierDeliveries", Limit=1)["Items"][0]
        correlation_id = item["correlation_id"]["S"]
        story = _make(env, "story", f"ID={correlation_id}")
        assert story.returncode == 0, story.stderr[-2000:]
        for service in ("notify-handler", "delivery-handler", "slow-api"):
            assert service in story.stdout, (service, story.stdout[-2000:])

        # the courier's API key is in Secrets Manager and nowhere else the run wrote (issue #19)
        places = {"experiment and Locust output": out, "make story": story.stdout}
        places.update(_lab_logs(state))
        places.update(_report_files(folder if folder.is_absolute() else REPO_ROOT / folder))
        places["Prometheus series"] = _prometheus_series(ports["LAB_PROMETHEUS_PORT"])
        for topology, (port, account) in {"no-flow-control": ("LAB_LOCALSTACK_PORT", "111111111111"),
                                          "flow-control": ("LAB_LOCALSTACK_FLOW_CONTROL_PORT", "222222222222")}.items():
            key = _api_key(ports[port], account)
            assert len(key) >= 20, "the key read back must be a real one, or the search below proves nothing"
            places[f"{topology} function logs"] = _function_logs(ports[port], account)
            places[f"{topology} platform metrics"] = _get(f"http://127.0.0.1:{ports[port]}/_lab/metrics")
            leaks = [where for where, text in places.items() if key in text]
            assert not leaks, f"the {topology} courier API key appears in: {leaks}"
        assert len(places["no-flow-control function logs"]) > 100_000  # the logs were really read

        # the guide's own command to find duplicated orders, on this lab's port
        guide = (REPO_ROOT / "docs" / "WORKSHOP.md").read_text()
        aws_line = next(line for line in guide.splitlines() if ".venv/bin/aws " in line)
        aws_line = aws_line.replace("127.0.0.1:4566", f"127.0.0.1:{ports['LAB_LOCALSTACK_PORT']}")
        scan = subprocess.run(["bash", "-c", aws_line], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
        assert scan.returncode == 0, scan.stderr[-2000:]
        for row in scan.stdout.split("\n"):
            if row.strip() and row.strip() != "None":  # the CLI prints None for no match
                assert int(row.split()[-1]) > 1, row  # only orders the courier got more than once

        rebuilt = _make(env, "report", timeout=900)
        assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
        assert rebuilt.stdout.strip().endswith("report.md")

        preview = _make(env, "preview", "PROFILE=smoke")
        assert preview.returncode == 0, preview.stderr[-2000:]
        assert "simulated run" in preview.stdout

        status = _make(env, "status")
        assert status.returncode == 0 and "mode: host" in status.stdout
    finally:
        down = _make(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not [key for key in PORT_KEYS if _bound(int(ports[key]))]
