"""Platform metrics at /_lab/metrics, live, as named in docs/METRICS.md (issue #4, point 4)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from grafana.lint import contract_metrics
from tests.integration.platform_support import (
    ASYNC_SETTINGS,
    deploy_function,
    metric,
    scrape,
    wait_for,
)

pytestmark = pytest.mark.integration

ACCOUNT = "222222222222"

HANDLER = """
import time

def handler(event, context):
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    time.sleep(event.get("sleep", 0))
    return {"ok": True}
"""


def test_lambda_invocations_errors_duration_throttles_and_concurrency(localstack):
    function = deploy_function(localstack, ACCOUNT, HANDLER, Timeout=10)
    lam = localstack.client("lambda", account=ACCOUNT)
    labels = {"account": ACCOUNT, "region": "us-east-1", "function_name": function}
    for event in ({}, {}, {}, {"fail": True}, {"fail": True}):
        lam.invoke(FunctionName=function, Payload=json.dumps(event))
    returned = time.monotonic()
    assert metric(localstack.url, "lab_lambda_invocations_total", **labels) == 5
    lag = time.monotonic() - returned
    print(f"metric lag after the invoke returned: {lag * 1000:.0f} ms (one scrape)")
    assert metric(localstack.url, "lab_lambda_errors_total", **labels) == 2
    assert metric(localstack.url, "lab_lambda_duration_seconds_count", **labels) == 5

    # a running invocation shows in the per-function and account gauges while it runs
    lam.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps({"sleep": 3}))
    wait_for(
        lambda: metric(localstack.url, "lab_lambda_concurrent_executions", **labels) == 1,
        10,
        "concurrent executions 1",
        interval=0.1,
    )
    assert (
        metric(
            localstack.url,
            "lab_lambda_account_concurrent_executions",
            account=ACCOUNT,
            region="us-east-1",
        )
        >= 1
    )
    assert (
        metric(
            localstack.url,
            "lab_lambda_account_concurrency_limit",
            account=ACCOUNT,
            region="us-east-1",
        )
        == 400
    )
    wait_for(
        lambda: metric(localstack.url, "lab_lambda_concurrent_executions", **labels) == 0
        and metric(localstack.url, "lab_lambda_invocations_total", **labels) == 6,
        15,
        "the async invocation to end",
    )
    assert metric(localstack.url, "lab_lambda_async_events_received_total", **labels) == 1
    assert metric(localstack.url, "lab_lambda_async_event_age_seconds_count", **labels) == 1

    # reserved concurrency 0: every sync invoke is throttled
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=0)
    for _ in range(2):
        with pytest.raises(lam.exceptions.TooManyRequestsException):
            lam.invoke(FunctionName=function, Payload=b"{}")
    assert metric(localstack.url, "lab_lambda_throttles_total", **labels) == 2
    assert metric(localstack.url, "lab_lambda_invocations_total", **labels) == 6


def test_async_failures_are_retried_dropped_and_delivered_to_the_dlq(localstack_with):
    instance = localstack_with(**ASYNC_SETTINGS)
    sqs = instance.client("sqs", account=ACCOUNT)
    dlq = sqs.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    function = deploy_function(
        instance, ACCOUNT, HANDLER, Timeout=10, DeadLetterConfig={"TargetArn": dlq_arn}
    )
    lam = instance.client("lambda", account=ACCOUNT)
    lam.put_function_event_invoke_config(FunctionName=function, MaximumRetryAttempts=1)
    labels = {"account": ACCOUNT, "region": "us-east-1", "function_name": function}
    lam.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps({"fail": True}))
    wait_for(
        lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages"), 30, "DLQ"
    )
    assert metric(instance.url, "lab_lambda_invocations_total", **labels) == 2  # first + 1 retry
    assert metric(instance.url, "lab_lambda_errors_total", **labels) == 2
    assert metric(instance.url, "lab_lambda_async_events_retried_total", **labels) == 1
    assert metric(instance.url, "lab_lambda_async_events_dropped_total", **labels) == 1
    assert (
        metric(
            instance.url,
            "lab_lambda_destination_deliveries_total",
            **labels,
            destination_type="dlq",
        )
        == 1
    )


def test_sqs_queue_gauges_follow_the_queue(localstack):
    sqs = localstack.client("sqs", account=ACCOUNT)
    name = f"gauges-{uuid.uuid4().hex[:6]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    labels = {"account": ACCOUNT, "region": "us-east-1", "queue_name": name}
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    time.sleep(1.1)
    assert metric(localstack.url, "lab_sqs_messages_visible", **labels) == 5
    assert metric(localstack.url, "lab_sqs_messages_delayed", **labels) == 1
    assert metric(localstack.url, "lab_sqs_oldest_message_age_seconds", **labels) >= 1
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)
    assert metric(localstack.url, "lab_sqs_messages_visible", **labels) == 3
    assert metric(localstack.url, "lab_sqs_messages_not_visible", **labels) == 2


def test_eventbridge_matched_invocations_and_failed_invocations_per_rule(localstack):
    function = deploy_function(localstack, ACCOUNT, HANDLER)
    lam = localstack.client("lambda", account=ACCOUNT)
    events = localstack.client("events", account=ACCOUNT)
    bus = f"bus-{uuid.uuid4().hex[:6]}"
    events.create_event_bus(Name=bus)
    arn = lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    for rule, target in (("good", arn), ("missing", arn.replace(function, "no-such-function"))):
        events.put_rule(
            Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["orders"]})
        )
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "t", "Arn": target}])
    entries = [{"Source": "orders", "DetailType": "x", "Detail": "{}", "EventBusName": bus}] * 3
    entries.append({"Source": "other", "DetailType": "x", "Detail": "{}", "EventBusName": bus})
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
    good = {"account": ACCOUNT, "region": "us-east-1", "event_bus": bus, "rule": "good"}
    missing = {**good, "rule": "missing"}
    wait_for(
        lambda: metric(localstack.url, "lab_events_invocations_total", **missing) == 3, 10, "3"
    )
    assert metric(localstack.url, "lab_events_matched_events_total", **good) == 3
    assert metric(localstack.url, "lab_events_invocations_total", **good) == 3
    assert metric(localstack.url, "lab_events_failed_invocations_total", **good) == 0
    assert metric(localstack.url, "lab_events_failed_invocations_total", **missing) == 3
    wait_for(
        lambda: metric(localstack.url, "lab_lambda_invocations_total", function_name=function) == 3,
        15,
        "the 3 events to run the function",
    )


def test_exposition_carries_exactly_the_contract_families(localstack):
    response = requests.get(f"{localstack.url}/_lab/metrics", timeout=10)
    families = {
        line.split()[2] for line in response.text.splitlines() if line.startswith("# TYPE ")
    }
    # the contract is docs/METRICS.md itself: a family added to the platform must be documented there
    contract = {name for name in contract_metrics() if name.startswith("lab_")}
    assert len(contract) >= 20
    assert contract <= families
    assert {f for f in families if f.startswith("lab_")} == contract
    scrape(localstack.url)  # every line parses as exposition (scrape asserts it; a fresh instance has no samples yet)
