"""Embedded Metric Format in logs becomes CloudWatch and Prometheus metrics (issue #4, point 5)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.platform_support import deploy_function, metric, wait_for

pytestmark = pytest.mark.integration

ACCOUNT = "222222222222"

# What Powertools Metrics prints (a single-line EMF document per flush)
EMF_HANDLER = """
import json, time

def handler(event, context):
    print(json.dumps({
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": "ServerlessBoundaryLab",
                "Dimensions": [["service"]],
                "Metrics": [
                    {"Name": "OrdersAccepted", "Unit": "Count"},
                    {"Name": "DeliveryLatency", "Unit": "Milliseconds"},
                ],
            }],
        },
        "service": event["service"],
        "OrdersAccepted": 1,
        "DeliveryLatency": event["latency_ms"],
    }))
    return {}
"""


def cloudwatch_sum(instance, namespace: str, name: str, dimensions: list[dict], stat: str = "Sum"):
    cloudwatch = instance.client("cloudwatch", account=ACCOUNT)
    now = datetime.now(UTC)
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": dimensions,
                    },
                    "Period": 60,
                    "Stat": stat,
                },
            }
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
    )
    return sum(result["MetricDataResults"][0]["Values"])


def test_function_emf_lines_become_cloudwatch_and_prometheus_metrics(localstack):
    function = deploy_function(localstack, ACCOUNT, EMF_HANDLER)
    service = f"svc-{uuid.uuid4().hex[:6]}"
    lam = localstack.client("lambda", account=ACCOUNT)
    for latency in (100, 300, 2000):
        lam.invoke(
            FunctionName=function, Payload=json.dumps({"service": service, "latency_ms": latency})
        )
    returned = time.monotonic()
    labels = {
        "namespace": "ServerlessBoundaryLab",
        "account": ACCOUNT,
        "region": "us-east-1",
        "service": service,
    }
    wait_for(
        lambda: metric(localstack.url, "emf_orders_accepted_total", **labels) == 3,
        10,
        "3 OrdersAccepted in Prometheus",
        interval=0.05,
    )
    print(f"EMF lag to Prometheus: {(time.monotonic() - returned) * 1000:.0f} ms")
    assert metric(localstack.url, "emf_delivery_latency_seconds_count", **labels) == 3
    assert metric(localstack.url, "emf_delivery_latency_seconds_sum", **labels) == pytest.approx(
        2.4
    )
    assert metric(localstack.url, "emf_delivery_latency_seconds_bucket", **labels, le="0.25") == 1

    dimensions = [{"Name": "service", "Value": service}]
    wait_for(
        lambda: cloudwatch_sum(localstack, "ServerlessBoundaryLab", "OrdersAccepted", dimensions)
        == 3,
        15,
        "3 OrdersAccepted in CloudWatch",
        interval=0.2,
    )
    print(f"EMF lag to CloudWatch: {(time.monotonic() - returned) * 1000:.0f} ms")
    assert (
        cloudwatch_sum(
            localstack, "ServerlessBoundaryLab", "DeliveryLatency", dimensions, stat="Maximum"
        )
        == 2000
    )


def _put_logs(instance, group: str, messages: list[str], emf_header: bool) -> None:
    logs = instance.client("logs", account=ACCOUNT)
    if emf_header:
        logs.meta.events.register(
            "before-sign.logs.PutLogEvents",
            lambda request, **_: request.headers.__setitem__("x-amzn-logs-format", "json/emf"),
        )
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": now, "message": m} for m in messages],
    )


def _emf(namespace: str, value: float, unit: str = "Count") -> str:
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [["Queue"]],
                        "Metrics": [{"Name": "Depth", "Unit": unit}],
                    }
                ],
            },
            "Queue": "orders",
            "Depth": value,
        }
    )


def test_put_log_events_with_the_emf_header_is_extracted_and_without_it_is_not(localstack):
    with_header = f"LabEmf{uuid.uuid4().hex[:6]}"
    without_header = f"LabPlain{uuid.uuid4().hex[:6]}"
    _put_logs(
        localstack,
        f"/lab/{with_header}",
        [_emf(with_header, 4, "None"), _emf(with_header, 9, "None")],
        True,
    )
    _put_logs(localstack, f"/lab/{without_header}", [_emf(without_header, 4, "None")], False)
    wait_for(
        lambda: metric(localstack.url, "emf_depth", namespace=with_header, queue="orders") == 9,
        10,
        "the last EMF gauge value",
    )
    # CloudWatch gets the metrics asynchronously (a PutMetricData a second, as AWS's is too)
    wait_for(
        lambda: cloudwatch_sum(localstack, with_header, "Depth", [{"Name": "Queue", "Value": "orders"}]) == 13,
        10,
        "both EMF values in CloudWatch",
    )
    assert metric(localstack.url, "emf_depth", namespace=without_header) == 0


FAILING_HANDLER = """
def handler(event, context):
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    return {}
"""


def test_lambdas_own_metrics_answer_get_metric_statistics_per_minute(localstack):
    """Lambda's `AWS/Lambda` Invocations and Errors, written by the platform without a request
    (LAB_PATCH_CLOUDWATCH_DIRECT), read back through the API at Lambda's 1-minute resolution."""
    function = deploy_function(localstack, ACCOUNT, FAILING_HANDLER)
    lam = localstack.client("lambda", account=ACCOUNT)
    for fail in (False, False, False, True, True):
        lam.invoke(FunctionName=function, Payload=json.dumps({"fail": fail}))
    cloudwatch = localstack.client("cloudwatch", account=ACCOUNT)
    dimensions = [{"Name": "FunctionName", "Value": function}]

    def per_minute(name: str) -> list[dict]:
        now = datetime.now(UTC)
        return cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName=name, Dimensions=dimensions, Statistics=["Sum"],
            Period=60, StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1),
        )["Datapoints"]

    # the platform flushes once a second
    wait_for(lambda: sum(p["Sum"] for p in per_minute("Invocations")) >= 5, 15, "5 invocations in CloudWatch")
    assert sum(p["Sum"] for p in per_minute("Invocations")) == 5
    assert sum(p["Sum"] for p in per_minute("Errors")) == 2
    listed = cloudwatch.list_metrics(Namespace="AWS/Lambda", Dimensions=dimensions)["Metrics"]
    assert {m["MetricName"] for m in listed} >= {"Invocations", "Errors"}
    assert cloudwatch_sum(localstack, "AWS/Lambda", "Invocations", dimensions) == 5
