"""Asynchronous invocations scale out to the account limit, throttled above it (issue #4, point 3)."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.platform_support import (
    ASYNC_SETTINGS,
    SPAN_HANDLER,
    deploy_function,
    metric,
    peak_overlap,
    spans,
    wait_for,
    warm_up,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACCOUNT = "111111111111"


def test_120_eventbridge_events_of_3_s_reach_the_account_limit_of_100(localstack_with):
    instance = localstack_with(**ASYNC_SETTINGS)
    function = deploy_function(instance, ACCOUNT, SPAN_HANDLER, Timeout=30)
    warm_up(instance, ACCOUNT, function, 100)
    throttles_before = metric(instance.url, "lab_lambda_throttles_total", function_name=function)
    # 120 events through an EventBridge rule (12 PutEvents calls): they reach Lambda's async
    # queue within a fraction of a second even on a busy machine, unlike 120 Invoke calls.
    events = instance.client("events", account=ACCOUNT)
    bus = f"async-{uuid.uuid4().hex[:6]}"
    events.create_event_bus(Name=bus)
    events.put_rule(Name="run", EventBusName=bus, EventPattern=json.dumps({"source": ["lab.test"]}))
    arn = instance.client("lambda", account=ACCOUNT).get_function(FunctionName=function)[
        "Configuration"
    ]["FunctionArn"]
    events.put_targets(
        Rule="run",
        EventBusName=bus,
        Targets=[{"Id": "fn", "Arn": arn, "Input": json.dumps({"sleep": 3})}],
    )
    entry = {"Source": "lab.test", "DetailType": "run", "Detail": "{}", "EventBusName": bus}
    clients = [instance.client("events", account=ACCOUNT) for _ in range(4)]

    def put(i: int) -> int:
        return clients[i % 4].put_events(Entries=[entry] * 10)["FailedEntryCount"]

    started = time.time()
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sum(pool.map(put, range(12))) == 0
    print(f"120 events put in {time.time() - started:.1f} s")
    found = wait_for(
        lambda: (s := spans(instance, ACCOUNT, function)) and len(s) >= 120 and s,
        120,
        "120 async invocations",
        interval=1,
    )
    time.sleep(2)  # a duplicate execution would show up as a 121st span
    found = spans(instance, ACCOUNT, function)
    peak = peak_overlap(found)
    throttles = (
        metric(instance.url, "lab_lambda_throttles_total", function_name=function)
        - throttles_before
    )
    retried = metric(instance.url, "lab_lambda_async_events_retried_total", function_name=function)
    wall = max(end for _, end in found) - started
    print(
        f"async 120 x 3 s, account limit 100: peak {peak}, throttles {throttles:.0f}, "
        f"retried {retried:.0f}, all ran after {wall:.1f} s"
    )
    assert len(found) == 120  # every event ran, exactly once
    assert peak == 100
    assert throttles >= 20  # at least the 20 events above the limit were throttled once
    assert retried == throttles  # each throttle put its event back for a retry
    assert (
        metric(instance.url, "lab_lambda_async_events_received_total", function_name=function)
        == 120
    )
    # 100 warm-up (sync) invocations + the 120 async ones
    assert metric(instance.url, "lab_lambda_invocations_total", function_name=function) == 220
    assert (
        metric(
            instance.url,
            "lab_lambda_account_concurrency_limit",
            account=ACCOUNT,
            region="us-east-1",
        )
        == 100
    )
    assert metric(instance.url, "lab_events_matched_events_total", event_bus=bus, rule="run") == 120
    assert metric(instance.url, "lab_events_invocations_total", event_bus=bus, rule="run") == 120


def test_a_throttled_event_is_kept_until_its_maximum_age_not_dropped_at_the_first_throttle(localstack):
    # AWS retries a throttled async event (1 s, 2 s, 4 s ... apart) for as long as it is younger
    # than MaximumEventAgeInSeconds. LocalStack judged it by the function-error retry's 60-s
    # look-ahead, so with the smallest maximum age (60 s) it went to the on-failure destination at
    # its first throttle, though the one environment it waited for was free 8 s later.
    account = "121212121212"
    function = deploy_function(localstack, account, SPAN_HANDLER, Timeout=30)
    lam = localstack.client("lambda", account=account)
    sqs = localstack.client("sqs", account=account)
    failures = sqs.create_queue(QueueName=f"on-failure-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    failures_arn = sqs.get_queue_attributes(QueueUrl=failures, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=1)
    lam.put_function_event_invoke_config(
        FunctionName=function, MaximumRetryAttempts=0, MaximumEventAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": failures_arn}})
    # the first event holds the only environment for 8 s; the second is throttled meanwhile
    for tag, sleep in (("holder", 8), ("waiter", 0)):
        lam.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps({"tag": tag, "sleep": sleep}))
        if tag == "holder":
            wait_for(lambda: metric(localstack.url, "lab_lambda_concurrent_executions", function_name=function) >= 1,
                     30, "the holder running")
    wait_for(lambda: metric(localstack.url, "lab_lambda_throttles_total", function_name=function) >= 1, 30,
             "the waiter throttled")
    waiter = wait_for(lambda: spans(localstack, account, function, "waiter"), 60, "the waiter run once the holder is done")
    holder = spans(localstack, account, function, "holder")
    assert len(waiter) == 1 and len(holder) == 1 and waiter[0][0] >= holder[0][1] - 0.5, (holder, waiter)
    dropped = sqs.receive_message(QueueUrl=failures, WaitTimeSeconds=1).get("Messages", [])
    assert not dropped, f"sent to the on-failure destination: {dropped[0]['Body'][:300]}"
