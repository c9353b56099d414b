"""`python -m resilience.verify` against a real LocalStack scraped by a real Prometheus.

The measure is the talk's: a latency objective (< 400 ms, the exact mean: the histogram has no
0.4 s bucket) for a function with 100-200 ms injected; the platform's `lab_lambda_duration_seconds`
(docs/METRICS.md) is what Prometheus sees.
The same objective fails when 500-600 ms is injected. Faults are reverted after both runs, the
function's previous fault document is restored exactly, and SIGINT mid-run reverts too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from resilience import verify
from tests.integration.resilience_support import deploy, invoke
from tests.support.prometheus import prometheus_factory  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

ACCOUNT = "111111111111"
REPO = Path(__file__).resolve().parents[2]

PROBE = """
from lab_faults import inject_faults

@inject_faults
def handler(event, context):
    return {"statusCode": 200, "body": "{}"}
"""

EXPERIMENT = """
name = "{name}"
objective = "the probe answers in under 400 ms (mean)"
topology = "no-flow-control"
duration = "{duration}"
warmup = "8s"
interval = "3s"

[measure]
query = '''sum(rate(lab_lambda_duration_seconds_sum{{function_name="{function}", topology="no-flow-control"}}[6s])) / sum(rate(lab_lambda_duration_seconds_count{{function_name="{function}", topology="no-flow-control"}}[6s]))'''
comparison = "<"
threshold = 0.4

[[condition]]
function = "{function}"
[condition.faults.latency]
min_ms = {low}
max_ms = {high}
"""


@pytest.fixture(scope="module")
def probe(localstack):
    name = deploy(localstack, PROBE, ACCOUNT, Timeout=5, MemorySize=256,
                  Environment={"Variables": {"LAB_FAULTS_CACHE_SECONDS": "0.5"}})
    stop = threading.Event()

    def traffic() -> None:  # steady invocations: what the measure is computed from
        while not stop.is_set():
            invoke(localstack, name, {}, ACCOUNT)
            stop.wait(0.1)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    yield name
    stop.set()
    worker.join(10)


@pytest.fixture
def prometheus(localstack, prometheus_factory):  # noqa: F811
    return prometheus_factory({"localstack": [localstack.url.removeprefix("http://")]},
                              scrape_interval="1s")


def experiment(tmp_path: Path, function: str, name: str, low: int, high: int,
               duration: str = "14s") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(EXPERIMENT.format(name=name, function=function, low=low, high=high,
                                      duration=duration))
    return path


def fault_document(localstack, function: str) -> dict | None:
    ssm = localstack.client("ssm", account=ACCOUNT)
    try:
        return json.loads(ssm.get_parameter(Name=f"/lab/faults/{function}")["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def test_verification_passes_and_fails_on_the_measure_and_reverts(localstack, probe, prometheus,
                                                                  tmp_path, capsys):
    prometheus.wait_for(f'lab_lambda_duration_seconds_count{{function_name="{probe}"}}')
    # an operator's own fault document, which verify must put back as it was
    previous = {"enabled": True, "faults": {"corruption": {"rate": 0.0, "style": "empty"}}}
    localstack.client("ssm", account=ACCOUNT).put_parameter(
        Name=f"/lab/faults/{probe}", Value=json.dumps(previous), Type="String", Overwrite=True)
    common = ["--endpoint-url", localstack.url, "--prometheus-url", prometheus.url, "--no-traffic"]

    passing = experiment(tmp_path, probe, "latency-100-200", 100, 200)
    assert verify.main([str(passing), *common]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "PASS latency-100-200" in out and "latency: " in out  # evidence: faults were injected
    assert fault_document(localstack, probe) == previous

    failing = experiment(tmp_path, probe, "latency-500-600", 500, 600)
    assert verify.main([str(failing), *common]) == 1
    out = capsys.readouterr().out
    assert "FAIL latency-500-600" in out and "violates" in out
    assert fault_document(localstack, probe) == previous

    # both in one run: one fail makes the run fail, and each verdict is printed
    assert verify.main([str(passing), str(failing), *common]) == 1
    out = capsys.readouterr().out
    assert "PASS latency-100-200" in out and "FAIL latency-500-600" in out, out


def test_an_interrupted_verification_reverts_its_faults(localstack, probe, prometheus, tmp_path):
    ssm = localstack.client("ssm", account=ACCOUNT)
    if fault_document(localstack, probe) is not None:
        ssm.delete_parameter(Name=f"/lab/faults/{probe}")
    long_run = experiment(tmp_path, probe, "long", 100, 200, duration="120s")
    process = subprocess.Popen(
        [sys.executable, "-m", "resilience.verify", str(long_run), "--endpoint-url", localstack.url,
         "--prometheus-url", prometheus.url, "--no-traffic"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while fault_document(localstack, probe) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        document = fault_document(localstack, probe)
        assert document and document["faults"]["latency"]["min_ms"] == 100
        assert "expires_at" in document  # self-reverting even if verify were SIGKILLed
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, output
    assert "condition reverted" in output and "interrupted by SIGINT" in output
    assert fault_document(localstack, probe) is None


def test_bad_experiment_files_are_refused_before_any_fault(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(EXPERIMENT.format(name="bad", function="x", low=300, high=100, duration="14s"))
    assert verify.main([str(bad), "--endpoint-url", "http://127.0.0.1:9"]) == 2
    assert "max_ms (100) is below min_ms" in capsys.readouterr().err
