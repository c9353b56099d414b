"""Every query of every panel returns data, without error, from a real Prometheus scraping a real
LocalStack (the lab's platform, both topologies provisioned by the bootstrap) and a real Locust.

A short run (see PROFILE) drives orders through both topologies; then each panel's queries are
asked the way Grafana asks them: a range query over the run for time series, an instant query for
stats, with Grafana's built-in variables replaced by values that fit the run.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from bootstrap.provision import provision_all
from grafana.build import _topology_selector, generate
from grafana.lint import METRIC_RE
from lab_kernel.settings import REPO_ROOT, Settings
from lab_kernel.topologies import catalogue
from tests.support.localstack import free_port
from tests.support.prometheus import prometheus_factory  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Short and gentle (20 s at 2 orders/s, then up to 5 per topology): enough for every panel, and
# within what LocalStack answers on a shared 2-core machine (at 8/s its notify API timed out).
PROFILE = """\
[profiles.panels]
description = "test_dashboards_panels: a short run through both topologies"
phases = [
    { name = "warm up", duration = 20, rate = 2 },
    { name = "ramp", duration = 40, to = 5 },
]
"""
SETTLE = 10  # s more, so the last rates have several scrapes
DELIVERY_WAIT = 150  # s at most after the run for both topologies' first delivery


def _finite(result: dict) -> bool:
    """At least one series with at least one finite value (NaN = empty histogram window)."""
    for series in result["result"]:
        values = series.get("values") or [series.get("value")]
        if any(v and math.isfinite(float(v[1])) for v in values):
            return True
    return False


def _resolve_dashboard_variables(prom, board: dict, window: str, at: float) -> dict[str, str]:
    """A dashboard's own variables as Grafana fills them on opening it: each `label_values(series,
    label)` asked of Prometheus in order (a later one may use an earlier one), the first value
    (sorted) for a single-value variable, "All" (its allValue) for a multi-value one. Each must
    offer at least one value: a variable with nothing to choose leaves its panels empty."""
    values: dict[str, str] = {}
    for variable in (board.get("templating") or {}).get("list") or []:
        series, label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"]).groups()
        for name, value in values.items():
            series = series.replace(name, value)
        result = prom.query(f"group by ({label}) (last_over_time({series}[{window}]))", at=at)["result"]
        offered = sorted(r["metric"][label] for r in result if label in r["metric"])
        assert offered, f"{board['uid']}: variable {variable['name']} offers no value ({series})"
        print(f"{board['uid']}: ${variable['name']} offers {offered}")
        values[f"${variable['name']}"] = variable["allValue"] if variable.get("includeAll") else offered[0]
    return values


def _other_topology(text: str, driven: tuple[str, ...]) -> bool:
    """Whether a board file name or a query belongs to a catalogue topology outside `driven`."""
    named = {t for t in catalogue().names if _topology_selector(t) in text or text == f"{t}.json"}
    return bool(named) and not named & set(driven)


def test_every_panel_query_returns_data(localstack, prometheus_factory, tmp_path: Path) -> None:
    # The default selection (the comparison pair) is what `make up` provisions and this run drives;
    # the catalogue's other topologies have boards of the same panels, checked by the unit tests.
    driven = catalogue().choose(None)
    settings = Settings.load()
    endpoints = provision_all(localstack.url, settings, endpoints_file=None)
    endpoints_file = tmp_path / "endpoints.json"
    endpoints_file.write_text(json.dumps(endpoints))
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(PROFILE)

    metrics_port = free_port()
    prom = prometheus_factory({
        "localstack": [urlparse(localstack.url).netloc],
        "locust": [f"127.0.0.1:{metrics_port}"],
    })
    prom.wait_for('lab_lambda_account_concurrency_limit{topology="flow-control"}', timeout=30)

    log = tmp_path / "locust.log"
    started = time.time()
    with open(log, "w") as out:
        locust = subprocess.Popen(
            [sys.executable, "-m", "load", "run", "--profile", "panels", "--topology", "both",
             "--profiles-file", str(profiles), "--endpoints", str(endpoints_file),
             "--reports", str(tmp_path / "reports"), "--metrics-port", str(metrics_port)],
            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        code = locust.wait(timeout=180)
    finally:
        if locust.poll() is None:
            os.killpg(locust.pid, signal.SIGKILL)
            locust.wait()
    print(log.read_text()[-2500:])
    # 1 = some requests failed (an overloaded emulator times out): the panels must show that too.
    # Anything else means Locust itself did not run.
    assert code in (0, 1), log.read_text()[-3000:]
    phases = json.loads(next((tmp_path / "reports").glob("*/phases.json")).read_text())
    assert all(row["sent"] > 0 for row in phases["phases"])
    # Deliveries lag the orders (courier 0-2 s, retries 3-8 s apart; much longer when the machine
    # is busy). Wait until both topologies deliver at a measurable rate: a rate needs increases
    # between scrapes of an existing series, a first delivery alone only creates the series.

    def delivering() -> list:
        since = f"{math.ceil(time.time() - started)}s"  # at any time since the run started
        return prom.query(
            "max_over_time((sum by (topology) (increase(emf_delivery_latency_seconds_count[30s])))"
            f"[{since}:5s]) > 0"
        )["result"]

    deadline = time.monotonic() + DELIVERY_WAIT
    while len(delivering()) < 2:
        assert time.monotonic() < deadline, (
            f"both topologies not delivering {DELIVERY_WAIT} s after the run: "
            f"{prom.query('sum by (topology) (emf_orders_delivered_total)')['result']}"
        )
        time.sleep(2)
    time.sleep(SETTLE)
    end = time.time()

    builtins = {"$__rate_interval": "30s", "$__range": f"{math.ceil(end - started) + 10}s"}
    checked, empty, skipped = 0, [], 0
    for name, board in generate().items():
        if _other_topology(name, driven):
            skipped += 1  # the board of a catalogue topology this run did not provision
            continue
        variables = {**_resolve_dashboard_variables(prom, board, builtins["$__range"], end), **builtins}
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                if _other_topology(expr, driven):
                    skipped += 1  # the overview's column of a topology this run did not drive
                    continue
                for variable, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
                    expr = expr.replace(variable, value)
                if target.get("instant") and not target.get("range"):
                    result = prom.query(expr, at=end)
                else:
                    result = prom.query_range(expr, started, end, 5)
                    if target.get("instant"):  # a stat: its big number is the instant value
                        result_now = prom.query(expr, at=end)
                        if not _finite(result_now):
                            empty.append(f"{name} / {panel['title']} / {target['refId']} (now)")
                checked += 1
                if not _finite(result):
                    empty.append(f"{name} / {panel['title']} / {target['refId']}: {expr}")
    # which counters the run never incremented (their panels show 0 through `or 0 * ...`)
    used = sorted({m for b in generate().values() for p in b["panels"] for t in p["targets"]
                   for m in METRIC_RE.findall(t["expr"])})
    window = builtins["$__range"]  # Locust's series went stale when it exited: look back
    unseen = [m for m in used
              if not prom.query(f'count(last_over_time({{__name__="{m}"}}[{window}]))')["result"]]
    print(f"boards and queries of topologies not driven, skipped: {skipped}")
    print(f"panel queries checked: {checked}, without data: {len(empty)}; metrics used: "
          f"{len(used)}, never emitted in this run: {unseen or 'none'}")
    assert checked >= 100
    assert not empty, "\n".join(empty)
