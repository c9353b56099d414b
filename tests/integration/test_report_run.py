"""The report, the ledger and the story on a real short run against a real LocalStack.

Both topologies are provisioned by the real bootstrap; orders are posted to the real notify APIs;
the report reads the real CloudWatch Logs, DynamoDB table and queues. A report taken while the
orders are still moving must count none lost. To show that lost is counted, not assumed, the test
then makes one flow-control order really disappear (accepted while the rule had no target, so the
bus dropped it): the final ledger must find exactly that order lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from bootstrap.topology import EVENT_BUS, RULE
from lab_kernel.settings import REPO_ROOT
from report import build as build_mod
from lab_kernel import endpoints as ep
from report.aws_state import client, scan_deliveries
from report.logs import fetch_group
from report.runs import RunWindow
from tests.support.provisioned import provisioned_lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ORDERS_PER_TOPOLOGY = 10


@pytest.fixture(scope="module")
def lab(localstack, tmp_path_factory):
    """Provisioned topologies, an endpoints file of their own, and a Prometheus scraping them."""
    with provisioned_lab(localstack.url, tmp_path_factory.mktemp("report-lab")) as (endpoints, endpoints_file):
        yield endpoints, endpoints_file


def post_order(topology: ep.Topology, order_id: str) -> str:
    response = requests.post(topology.notify_url, json={"order_id": order_id, "item": "widget"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["correlation_id"]


def courier_ids(endpoints: ep.Endpoints, topology: ep.Topology) -> set[str]:
    return {r.correlation_id for r in scan_deliveries(client(endpoints, topology, "dynamodb"), topology.deliveries_table)}


def wait_until(predicate, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def rule_targets(endpoints: ep.Endpoints, topology: ep.Topology) -> tuple[object, list[dict]]:
    events = client(endpoints, topology, "events")
    targets = events.list_targets_by_rule(Rule=RULE, EventBusName=EVENT_BUS)["Targets"]
    assert targets, "the flow-control rule has no target"
    return events, targets


def test_report_ledger_and_story_on_a_real_run(lab, tmp_path: Path):
    endpoints, endpoints_file = lab
    nfc, fc = endpoints.topology("no-flow-control"), endpoints.topology("flow-control")
    run_id = f"rpt{uuid.uuid4().hex[:8]}"
    start = time.time()

    sent: dict[str, list[str]] = {"no-flow-control": [], "flow-control": []}
    for i in range(ORDERS_PER_TOPOLOGY):
        for topology in (nfc, fc):
            sent[topology.name].append(post_order(topology, f"{run_id}-{topology.name}-{i:03d}"))
        time.sleep(0.25)  # ~4 orders/s per topology: below the courier's 10 req/s, nothing throttles

    # CloudWatch Logs lag a little behind the 200 (LocalStack stores them from a queue, AWS too):
    # wait until every acceptance is readable, then report at once while deliveries still run.
    def acceptances(t: ep.Topology) -> set[str]:
        lines = fetch_group(client(endpoints, t, "logs"), t.log_group("notification"), "notification", int(start * 1000) - 1000)
        return {l.correlation_id for l in lines if l.status == "COMPLETED"}

    for topology in (nfc, fc):
        wait_until(lambda t=topology: set(sent[t.name]) <= acceptances(t), 60, f"{topology.name} acceptance logs", 0.5)

    # Mid-run: nothing can be lost yet, every order not delivered is in flight.
    early_window = RunWindow(tmp_path / f"{run_id}-early", start, time.time(), "smoke", run_id, True)
    _, early = build_mod.build(endpoints, early_window)
    for name, ids in sent.items():
        led = early.results[name].ledger
        assert early.results[name].accepted == set(ids)
        assert set().union(*led.buckets.values()) == set(ids)
        assert sum(len(b) for b in led.buckets.values()) == len(ids)
        assert led.count("lost") == 0
        assert led.count("delivered") + led.count("in_flight") == len(ids)

    for topology in (nfc, fc):
        wait_until(lambda t=topology: set(sent[t.name]) <= courier_ids(endpoints, t), 180, f"{topology.name} deliveries")

    # One order really lost: accepted while the flow-control rule had no target, so the bus
    # matched it and dropped it (a misconfiguration AWS would not warn about either).
    events, targets = rule_targets(endpoints, fc)
    events.remove_targets(Rule=RULE, EventBusName=EVENT_BUS, Ids=[t["Id"] for t in targets])
    try:
        lost_id = post_order(fc, f"{run_id}-flow-control-lost")
    finally:
        events.put_targets(Rule=RULE, EventBusName=EVENT_BUS, Targets=targets)
    end = time.time()
    time.sleep(6)  # past the settle window below, so the dropped order is decidable

    window = RunWindow(tmp_path / f"{run_id}-report", start, end, "smoke", run_id, True)
    path, data = build_mod.build(endpoints, window, settle_seconds=5.0)

    for name, ids in sent.items():
        r = data.results[name]
        expected_accepted = set(ids) | ({lost_id} if name == "flow-control" else set())
        assert r.accepted == expected_accepted
        assert r.started == expected_accepted
        ledger = r.ledger
        # every accepted order in exactly one bucket
        assert sum(len(b) for b in ledger.buckets.values()) == len(expected_accepted)
        assert set().union(*ledger.buckets.values()) == expected_accepted
        assert ledger.buckets["delivered"] == set(ids)
        assert set(ids) <= r.completed
        # one latency per delivered order, each within the time this test has been running
        assert r.latency.count == len(ids)
        assert 0 < r.latency.p50 <= r.latency.p95 <= r.latency.p99 <= r.latency.max < time.time() - start
    fc_ledger = data.results["flow-control"].ledger
    assert fc_ledger.lost_decidable
    assert fc_ledger.buckets["lost"] == {lost_id}
    assert fc_ledger.count("in_flight") == 0
    assert data.results["no-flow-control"].ledger.count("lost") == 0
    # the article's rate: 10 of 11 flow-control orders completed, all 10 no-flow-control ones
    assert data.results["flow-control"].actual_success == pytest.approx(10 / 11)
    assert data.results["no-flow-control"].actual_success == 1.0
    # ... and over the load window alone (#14): all of it here, since the window ended after the
    # deliveries; a window ending before the first order completed counts none of them
    assert data.results["no-flow-control"].actual_success_in_load == 1.0
    _, at_start = build_mod.build(endpoints, RunWindow(tmp_path / f"{run_id}-at-start", start, start, "smoke", run_id, True))
    assert at_start.results["no-flow-control"].actual_success_in_load == 0.0
    assert at_start.results["no-flow-control"].actual_success == 1.0
    _, mid = build_mod.build(endpoints, RunWindow(tmp_path / f"{run_id}-mid", start, early_window.end, "smoke", run_id, True))
    assert mid.results["no-flow-control"].actual_success_in_load <= mid.results["no-flow-control"].actual_success

    text = path.read_text()
    assert "| flow-control | 11 | 10 (90.9%) | 0 (0.0%) | 0 (0.0%) | 1 (9.1%) | yes | yes |" in text
    assert "| no-flow-control | 10 | 10 (100.0%) | 0 (0.0%) | 0 (0.0%) | 0 (0.0%) | yes | yes |" in text
    assert "### Capacity preview" in text and "29 s timeout" in text
    assert "| no-flow-control delivery success, lowest minute |" in text
    # the PromQL subquery behind that row ran on the real Prometheus (no failed delivery here)
    assert all(v == pytest.approx(1.0) for v in data.figures.lowest_delivery_success.values())
    plots = sorted(p.name for p in (path.parent / "plots").glob("*.png"))
    assert "concurrency.png" in plots and "orders.png" in plots, plots
    summary = json.loads((path.parent / "report.json").read_text())
    assert summary["topologies"]["flow-control"]["ledger"]["lost"] == 1

    # The story of one delivered order, through the real CLI.
    cid = sent["no-flow-control"][0]
    out = subprocess.run(
        [sys.executable, "-m", "report", "--endpoints", str(endpoints_file), "story", cid],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0].startswith(f"story of {cid} in no-flow-control:")
    body = rows[2:-1]
    assert "notify-handler" in body[0] and "START" in body[0]
    services = [row.split()[3] for row in body]
    assert {"notify-handler", "delivery-handler", "slow-api"} <= set(services)
    times = [row[:23] for row in body]
    assert times == sorted(times)
    assert rows[-1].startswith("statuses: notify-handler:START -> notify-handler:COMPLETED -> delivery-handler:START")
    assert rows[-1].endswith("delivery-handler:COMPLETED")

    missing = subprocess.run(
        [sys.executable, "-m", "report", "--endpoints", str(endpoints_file), "story", "no-such-order-id"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert missing.returncode == 1 and "no log line mentions correlation_id no-such-order-id" in missing.stderr


def test_preview_reads_the_deployed_configuration(lab):
    endpoints, endpoints_file = lab
    nfc = endpoints.topology("no-flow-control")
    lam = client(endpoints, nfc, "lambda")
    fn = nfc.functions["delivery"]

    def preview() -> str:
        out = subprocess.run(
            [sys.executable, "-m", "report", "--endpoints", str(endpoints_file), "preview", "--profile", "smoke"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    text = preview()
    assert "[FAIL] retry budget vs function timeout: 4 waits x up to 8 s = 32 s" in text
    assert "vs a 29 s timeout" in text
    assert "peak 15 orders/s vs usage plan 10 req/s" in text
    assert "simulated run (report.simulate" in text and "ESM, queue <- deployed config" in text
    original = lam.get_function_configuration(FunctionName=fn)["Timeout"]
    lam.update_function_configuration(FunctionName=fn, Timeout=40)
    try:
        wait_until(lambda: lam.get_function_configuration(FunctionName=fn).get("LastUpdateStatus") == "Successful", 60, "update")
        changed = preview()
        assert "[ok  ] retry budget vs function timeout" in changed and "vs a 40 s timeout" in changed
    finally:
        lam.update_function_configuration(FunctionName=fn, Timeout=original)
