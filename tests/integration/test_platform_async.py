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
