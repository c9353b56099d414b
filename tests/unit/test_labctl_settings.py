"""Where each topology's LocalStack is (lab_kernel/settings.py) and how the tools read it back."""

from __future__ import annotations

from lab_kernel.settings import Settings
from lab_kernel.endpoints import parse
from resilience.lab import load_lab

PORTS = {"LAB_LOCALSTACK_PORT": "4566", "LAB_LOCALSTACK_FLOW_CONTROL_PORT": "4567"}


def test_one_localstack_per_topology_by_default():
    settings = Settings({**PORTS, "LAB_LOCALSTACK_PER_TOPOLOGY": "1"})
    assert settings.localstack_instances() == {
        "localstack": "LAB_LOCALSTACK_PORT", "localstack-flow-control": "LAB_LOCALSTACK_FLOW_CONTROL_PORT"}
    assert settings.localstack_urls() == {
        "no-flow-control": "http://127.0.0.1:4566", "flow-control": "http://127.0.0.1:4567"}
    assert Settings(dict(PORTS)).localstack_per_topology  # unset means on


def test_both_topologies_in_one_localstack_when_switched_off():
    settings = Settings({**PORTS, "LAB_LOCALSTACK_PER_TOPOLOGY": "0"})
    assert settings.localstack_instances() == {"localstack": "LAB_LOCALSTACK_PORT"}
    assert set(settings.localstack_urls().values()) == {"http://127.0.0.1:4566"}


ENDPOINTS = {
    "localstack_url": "http://127.0.0.1:4566",
    "prometheus_url": "http://127.0.0.1:9090",
    "grafana_url": "http://127.0.0.1:3000",
    "topologies": {
        "no-flow-control": {"account": "111111111111", "localstack_url": "http://127.0.0.1:4566"},
        "flow-control": {"account": "222222222222", "localstack_url": "http://127.0.0.1:4567/"},
    },
}


def test_report_reads_each_topologys_localstack_and_falls_back_to_the_labs():
    endpoints = parse(ENDPOINTS)
    assert endpoints.topology("flow-control").localstack_url == "http://127.0.0.1:4567"
    assert endpoints.localstack_urls == ["http://127.0.0.1:4566", "http://127.0.0.1:4567"]
    old = parse({**ENDPOINTS, "topologies": {"flow-control": {"account": "222222222222"}}})
    assert old.topology("flow-control").localstack_url == "http://127.0.0.1:4566"  # files from before


def test_resilience_clients_go_to_the_topologys_localstack(tmp_path):
    import json

    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps(ENDPOINTS))
    lab = load_lab(path=path)
    fc = lab.topologies["flow-control"]
    assert lab.client("sqs", fc).meta.endpoint_url == "http://127.0.0.1:4567"
    # an explicit endpoint URL is one LocalStack for both
    single = load_lab("http://127.0.0.1:5000", path=path)
    assert single.client("sqs", single.topologies["flow-control"]).meta.endpoint_url == "http://127.0.0.1:5000"
