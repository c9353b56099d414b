"""A real `smoke` run of Locust (`python -m load run`) against a tiny local HTTP target.

The target answers most orders in 0-200 ms and every 25th in 3 s: a closed model (fixed users)
would fall behind during those slow answers; the arrival model must not. The rate is checked
twice: by Locust's own per-phase count and by what the target actually received.
"""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lab_kernel.settings import REPO_ROOT
from load.profiles import get_profile
from tests.support.localstack import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOLERANCE = 0.10


class _Target(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received: list[tuple[float, str, str]] = []  # (epoch, topology path, order_id)
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        at = time.time()
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        with self.lock:
            self.received.append((at, self.path.split("/")[1], body["order_id"]))
            count = len(self.received)
        time.sleep(3.0 if count % 25 == 0 else random.uniform(0, 0.2))
        out = b'{"correlation_id": "x"}'
        self.send_response(200)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def target():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Target)
    server.daemon_threads = True
    _Target.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(locust_\w+(?:\{[^}]*\})?) (\S+)$", text, re.MULTILINE)
    }


def test_smoke_run_holds_each_phase_rate(tmp_path: Path, target: str) -> None:
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({"topologies": {
        "no-flow-control": {"account": "111111111111", "notify_url": f"{target}/nfc/notify"},
        "flow-control": {"account": "222222222222", "notify_url": f"{target}/fc/notify"},
    }}))
    metrics_port = free_port()
    command = [
        sys.executable, "-m", "load", "run", "--profile", "smoke", "--topology", "both",
        "--endpoints", str(endpoints), "--reports", str(tmp_path / "reports"),
        "--metrics-port", str(metrics_port),
    ]
    log = tmp_path / "load.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        # mid-run (phase 3, 4 -> 15 req/s), Locust's metrics are live for Prometheus; polled, as
        # Locust's start-up takes from 2 to 15 s on a busy machine
        deadline = time.monotonic() + 120
        sample: dict[str, float] = {}
        while sample.get('locust_phase{profile="smoke"}') != 3 and time.monotonic() < deadline:
            time.sleep(2)
            try:
                sample = _scrape(f"http://127.0.0.1:{metrics_port}/metrics")
            except OSError:
                continue  # not serving yet
        assert proc.wait(timeout=420) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    print(output[-4000:])

    assert sample['locust_phase{profile="smoke"}'] == 3
    for topology in ("no-flow-control", "flow-control"):
        # phases 1-2 alone are 110 arrivals per topology
        assert sample[f'locust_requests_sent_total{{topology="{topology}"}}'] >= 105
        assert sample[f'locust_requests_total{{topology="{topology}"}}'] >= 100
        assert 4.0 <= sample[f'locust_target_rps{{topology="{topology}"}}'] <= 15.0  # the ramp
        assert f'locust_request_failures_total{{topology="{topology}"}}' in sample

    # progress lines: phase, target and actual rate
    assert re.search(r"phase 4/4 'sustained overload' target 15\.00 req/s .* actual: "
                     r"no-flow-control 1[3-7]\.\d\d req/s", output), output[-3000:]

    report = next((tmp_path / "reports").iterdir())
    assert (report / "report.html").stat().st_size > 10_000
    stats_rows = {r["Name"]: r for r in csv.DictReader(open(report / "locust_stats.csv"))}
    phases = json.loads((report / "phases.json").read_text())
    profile = get_profile("smoke")
    bounds = profile.boundaries()
    received = list(_Target.received)
    paths = {"no-flow-control": "nfc", "flow-control": "fc"}
    print("phase | topology | target req/s | Locust sent req/s | target received req/s")
    for row in phases["phases"]:
        index, topology = row["phase"] - 1, row["topology"]
        target_rate = profile.phases[index].mean_rate
        assert row["target_rps"] == pytest.approx(target_rate)
        start = phases["started_at"] + bounds[index]
        end = phases["started_at"] + bounds[index + 1]
        got = sum(1 for at, path, _ in received if path == paths[topology] and start <= at < end)
        server_rate = got / (end - start)
        print(f"{row['phase']} {row['name']} | {topology} | {target_rate:.2f} | "
              f"{row['actual_rps']:.2f} | {server_rate:.2f}")
        assert abs(row["actual_rps"] / target_rate - 1) <= TOLERANCE, row
        assert abs(server_rate / target_rate - 1) <= TOLERANCE, (row, server_rate)
        assert row["failed"] == 0

    expected_total = round(profile.arrivals(profile.duration))  # 3760 per topology
    for topology, path in paths.items():
        sent = sum(1 for _, p, _ in received if p == path)
        assert sent == expected_total, topology
        assert int(stats_rows[f"POST /notify [{topology}]"]["Request Count"]) == expected_total
    ids = [order for _, _, order in received]
    assert len(set(ids)) == len(ids), "order ids must be unique"
