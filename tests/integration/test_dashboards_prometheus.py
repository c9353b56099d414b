"""The committed Prometheus config on Debian's real binary: 5 s scrapes, account -> topology
relabelling, Locust's exposition; and host mode's `labctl.prometheus_host.start`."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from labctl import processes, prometheus_host
from lab_kernel.settings import Settings
from load.metrics import LocustMetrics
from tests.support.localstack import free_port
from tests.support.prometheus import prometheus_factory  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

PLATFORM = """\
# TYPE lab_lambda_invocations_total counter
lab_lambda_invocations_total{account="111111111111",region="us-east-1",function_name="delivery"} 7
lab_lambda_invocations_total{account="222222222222",region="us-east-1",function_name="delivery"} 3
lab_lambda_invocations_total{account="000000000000",region="us-east-1",function_name="other"} 1
"""


class _Platform(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        _Platform.paths.append(self.path)
        body = PLATFORM.encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain; version=0.0.4")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def platform_stub():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Platform)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_relabels_account_to_topology_and_scrapes_locust(prometheus_factory, platform_stub):
    locust = LocustMetrics()
    locust.init_topology("flow-control")
    locust.observe("flow-control", 0.2, failed=True)
    locust_port = free_port()
    locust.serve(locust_port, "127.0.0.1")

    prom = prometheus_factory({"localstack": [platform_stub], "locust": [f"127.0.0.1:{locust_port}"]})
    series = prom.wait_for("lab_lambda_invocations_total", timeout=30)
    by_account = {s["metric"]["account"]: s["metric"] for s in series}
    assert by_account["111111111111"]["topology"] == "no-flow-control"
    assert by_account["222222222222"]["topology"] == "flow-control"
    assert "topology" not in by_account["000000000000"]  # no topology invented
    assert prom.query('lab_lambda_invocations_total{topology="no-flow-control"}')["result"][0][
        "value"][1] == "7"
    assert "/_lab/metrics" in _Platform.paths

    failures = prom.wait_for('locust_request_failures_total{topology="flow-control"}', timeout=30)
    assert failures[0]["value"][1] == "1"
    intervals = {t["labels"]["job"]: t["scrapeInterval"] for t in prom.targets()}
    assert intervals == {"localstack": "5s", "locust": "5s"}


def test_host_mode_start_serves_and_stops(tmp_path: Path, monkeypatch, platform_stub):
    port = free_port()
    monkeypatch.setenv("LAB_PROMETHEUS_PORT", str(port))
    monkeypatch.setenv("LAB_LOCALSTACK_PORT", platform_stub.split(":")[1])
    name = f"prometheus-test-{os.getpid()}"
    process = prometheus_host.start(Settings.load(), name=name, state_dir=tmp_path)
    # `make up` exits after starting it, so init reaps it; here pytest is the parent and must reap
    # it, or its zombie would look alive to labctl.processes (which reads /proc/PID/stat).
    reaper = threading.Thread(target=os.waitpid, args=(process.pid, 0), daemon=True)
    reaper.start()
    try:
        assert process.alive
        assert prometheus_host.is_ready(f"http://127.0.0.1:{port}")
        config = (tmp_path / "prometheus.yml").read_text()
        assert f"127.0.0.1:{platform_stub.split(':')[1]}" in config
        assert (tmp_path / "data").is_dir()
    finally:
        assert processes.stop(name)
    assert not process.alive
    assert processes.find(name) is None


def test_missing_binary_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(prometheus_host.shutil, "which", lambda _name: None)
    monkeypatch.setattr(prometheus_host, "Path", lambda _p: Path("/nonexistent"))
    with pytest.raises(prometheus_host.PrometheusError, match="scripts/install-system-deps.sh"):
        prometheus_host.binary()
