"""Embedded Metric Format parsing and its Prometheus families (lab_platform.emf)."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from lab_platform.emf.parser import EmfDatum, parse_line, snake_case
from lab_platform.emf.store import EmfStore, family_for

POWERTOOLS_LINE = json.dumps(
    {
        "_aws": {
            "Timestamp": 1763900000000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "ServerlessBoundaryLab",
                    "Dimensions": [["service", "state"]],
                    "Metrics": [
                        {"Name": "CircuitStateChange", "Unit": "Count"},
                        {"Name": "DeliveryLatency", "Unit": "Milliseconds"},
                        {"Name": "QueueDepth", "Unit": "None"},
                    ],
                }
            ],
        },
        "service": "delivery",
        "state": "open",
        "CircuitStateChange": 1,
        "DeliveryLatency": [120, 80],
        "QueueDepth": 7,
    }
)


def test_parse_powertools_line():
    data = parse_line(POWERTOOLS_LINE + "\n")
    assert [d.name for d in data] == ["CircuitStateChange", "DeliveryLatency", "QueueDepth"]
    latency = data[1]
    assert latency == EmfDatum(
        namespace="ServerlessBoundaryLab",
        name="DeliveryLatency",
        unit="Milliseconds",
        dimensions=(("service", "delivery"), ("state", "open")),
        values=(120.0, 80.0),
        timestamp_ms=1763900000000,
    )


def test_each_dimension_set_is_its_own_metric():
    doc = json.loads(POWERTOOLS_LINE)
    doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = [["service"], ["service", "state"]]
    data = [d for d in parse_line(json.dumps(doc)) if d.name == "QueueDepth"]
    assert [d.dimensions for d in data] == [
        (("service", "delivery"),),
        (("service", "delivery"), ("state", "open")),
    ]


def test_invalid_documents_yield_nothing():
    assert parse_line("START RequestId: abc") == []
    assert parse_line('{"_aws": {"CloudWatchMetrics": []}}') == []  # no Timestamp
    doc = json.loads(POWERTOOLS_LINE)
    del doc["state"]  # a dimension without a string value invalidates the directive
    assert parse_line(json.dumps(doc)) == []
    doc = json.loads(POWERTOOLS_LINE)
    doc["QueueDepth"] = "seven"
    assert [d.name for d in parse_line(json.dumps(doc))] == [
        "CircuitStateChange",
        "DeliveryLatency",
    ]


def test_snake_case_names():
    assert snake_case("OrdersAccepted") == "orders_accepted"
    assert snake_case("HTTPErrors") == "http_errors"
    assert snake_case("service") == "service"
    assert snake_case("Fault-Injected") == "fault_injected"


def test_units_choose_counter_histogram_or_gauge():
    assert family_for("OrdersAccepted", "Count") == ("counter", "emf_orders_accepted")
    assert family_for("DeliveryLatency", "Milliseconds") == (
        "histogram",
        "emf_delivery_latency_seconds",
    )
    assert family_for("QueueDepth", "None") == ("gauge", "emf_queue_depth")


def test_store_exposes_families_with_labels_in_prometheus_text():
    store = EmfStore()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(store)
    for datum in parse_line(POWERTOOLS_LINE) + parse_line(POWERTOOLS_LINE):
        store.record(datum, "111111111111", "us-east-1")
    text = generate_latest(registry).decode()
    labels = {
        "account": "111111111111",
        "namespace": "ServerlessBoundaryLab",
        "region": "us-east-1",
        "service": "delivery",
        "state": "open",
    }
    value = registry.get_sample_value
    assert value("emf_circuit_state_change_total", labels) == 2.0
    assert value("emf_queue_depth", labels) == 7.0
    assert value("emf_delivery_latency_seconds_count", labels) == 4.0
    assert value("emf_delivery_latency_seconds_sum", labels) == pytest.approx(0.4)
    assert value("emf_delivery_latency_seconds_bucket", {**labels, "le": "0.1"}) == 2.0
    assert value("emf_delivery_latency_seconds_bucket", {**labels, "le": "0.25"}) == 4.0
    assert value("emf_delivery_latency_seconds_bucket", {**labels, "le": "+Inf"}) == 4.0
    assert "# TYPE emf_delivery_latency_seconds histogram" in text
    assert "# TYPE emf_circuit_state_change_total counter" in text
