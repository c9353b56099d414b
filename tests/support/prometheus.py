"""A real Prometheus (Debian's binary) for tests, with the lab's committed scrape config.

`start(targets)` renders `prometheus/prometheus.yml` with the given targets (same relabelling and
intervals as the lab), on a free port with a throw-away TSDB. The `prometheus_factory` fixture
stops every instance it started. Import it into a test module to use it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl.prometheus_host import argv, is_ready, render_config
from tests.support.localstack import free_port


@dataclass
class PrometheusInstance:
    url: str
    state: Path
    process: subprocess.Popen = field(repr=False)

    @property
    def log_file(self) -> Path:
        return self.state / "prometheus.log"

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> dict:
        """Instant query; the API's `data` (resultType, result). Errors raise with the message."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            return self.api("query", **params)
        except urllib.error.HTTPError as error:  # 400 for a bad expression: say which and why
            raise AssertionError(f"{expr}: {error.read().decode()}") from None

    def query_range(self, expr: str, start: float, end: float, step: float) -> dict:
        try:
            return self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}",
                            step=f"{step:g}")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{expr}: {error.read().decode()}") from None

    def targets(self) -> list[dict]:
        return self.api("targets")["activeTargets"]

    def wait_for(self, expr: str, timeout: float = 60.0) -> list[dict]:
        """Poll until `expr` returns at least one series; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)["result"]
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no data for {expr} after {timeout:.0f} s; targets: "
                    f"{[(t['scrapeUrl'], t['health'], t['lastError']) for t in self.targets()]}"
                )
            time.sleep(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if not os.environ.get("LAB_KEEP_TEST_STATE"):
            shutil.rmtree(self.state, ignore_errors=True)


def start(
    targets: dict[str, list[str]],
    scrape_interval: str | None = None,
    timeout: float = 60.0,
) -> PrometheusInstance:
    """Prometheus scraping `targets` (job name -> ["127.0.0.1:PORT"]), ready to query."""
    state = Path(tempfile.mkdtemp(prefix="lab-test-prometheus-"))
    config = render_config(targets)
    if scrape_interval:  # only to make a test faster; the committed interval is the default
        data = yaml.safe_load(config)
        data["global"]["scrape_interval"] = scrape_interval
        data["global"]["scrape_timeout"] = scrape_interval
        config = yaml.safe_dump(data, sort_keys=False)
    (state / "prometheus.yml").write_text(config)
    port = free_port()
    with open(state / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            argv(state / "prometheus.yml", state / "data", port),
            cwd=state, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    instance = PrometheusInstance(f"http://127.0.0.1:{port}", state, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log_text = instance.log_file.read_text()[-3000:]
            instance.stop()
            raise RuntimeError(f"Prometheus exited at start:\n{log_text}")
        try:
            if is_ready(instance.url):
                return instance
        except OSError:
            pass
        if time.monotonic() > deadline:
            instance.stop()
            raise RuntimeError(f"Prometheus not ready after {timeout} s")
        time.sleep(0.3)


@pytest.fixture
def prometheus_factory() -> Iterator:
    started: list[PrometheusInstance] = []

    def factory(targets: dict[str, list[str]], **kw: Any) -> PrometheusInstance:
        instance = start(targets, **kw)
        started.append(instance)
        return instance

    yield factory
    for instance in started:
        instance.stop()
