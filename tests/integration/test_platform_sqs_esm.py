"""SQS event source mapping concurrency, partial batch failures and redrive (issue #4, point 2)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.integration.platform_support import (
    SPAN_HANDLER,
    deploy_function,
    metric,
    peak_overlap,
    spans,
    wait_for,
    warm_up,
)

pytestmark = pytest.mark.integration

ACCOUNT = "111111111111"


def make_queue(instance, **attributes: str) -> tuple[str, str]:
    sqs = instance.client("sqs", account=ACCOUNT)
    url = sqs.create_queue(QueueName=f"esm-{uuid.uuid4().hex[:8]}", Attributes=attributes)[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def send(instance, url: str, bodies: list[dict]) -> None:
    sqs = instance.client("sqs", account=ACCOUNT)
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": json.dumps(b)} for i, b in enumerate(chunk)],
        )


def all_spans(instance, function: str, count: int, timeout: float) -> list[tuple[float, float]]:
    return wait_for(
        lambda: (found := spans(instance, ACCOUNT, function)) and len(found) >= count and found,
        timeout,
        f"{count} invocations of {function}",
        interval=0.5,
    )


def test_maximum_concurrency_10_runs_40_messages_of_2_s_in_4_waves(localstack):
    function = deploy_function(localstack, ACCOUNT, SPAN_HANDLER, Timeout=30)
    warm_up(localstack, ACCOUNT, function, 10)
    url, arn = make_queue(localstack, VisibilityTimeout="60")
    send(localstack, url, [{"sleep": 2}] * 40)
    localstack.client("lambda", account=ACCOUNT).create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=arn,
        BatchSize=1,
        ScalingConfig={"MaximumConcurrency": 10},
    )
    found = all_spans(localstack, function, 40, timeout=90)
    peak = peak_overlap(found)
    wall = max(end for _, end in found) - min(start for start, _ in found)
    print(f"ESM MaximumConcurrency=10, 40 x 2 s: peak {peak}, wall {wall:.1f} s")
    assert len(found) == 40
    assert peak == 10
    assert 6 <= wall <= 10


def test_reserved_concurrency_caps_the_mapping_and_throttles_are_retried(localstack):
    function = deploy_function(localstack, ACCOUNT, SPAN_HANDLER, Timeout=30)
    lam = localstack.client("lambda", account=ACCOUNT)
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=3)
    url, arn = make_queue(localstack, VisibilityTimeout="60")
    send(localstack, url, [{"sleep": 1}] * 12)
    lam.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=arn,
        BatchSize=1,
        ScalingConfig={"MaximumConcurrency": 10},
    )
    found = all_spans(localstack, function, 12, timeout=90)
    assert len(found) == 12  # every message ran exactly once: throttled batches were retried
    assert peak_overlap(found) == 3
    assert metric(localstack.url, "lab_lambda_throttles_total", function_name=function) > 0


def test_without_maximum_concurrency_the_mapping_scales_with_the_backlog(localstack):
    function = deploy_function(localstack, ACCOUNT, SPAN_HANDLER, Timeout=30)
    url, arn = make_queue(localstack, VisibilityTimeout="60")
    send(localstack, url, [{"sleep": 3}] * 30)
    localstack.client("lambda", account=ACCOUNT).create_event_source_mapping(
        FunctionName=function, EventSourceArn=arn, BatchSize=1
    )
    found = all_spans(localstack, function, 30, timeout=90)
    peak = peak_overlap(found)
    print(f"ESM without MaximumConcurrency, 30 x 3 s: peak {peak}")
    # AWS starts with 5 concurrent batches and adds up to 300 per minute (5 per second)
    assert 5 < peak <= 30


FAILING_HANDLER = """
import json

def handler(event, context):
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        print(json.dumps({"seen": body["id"], "receive": record["attributes"]["ApproximateReceiveCount"]}))
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
"""


def test_report_batch_item_failures_and_redrive_to_the_dlq(localstack):
    function = deploy_function(localstack, ACCOUNT, FAILING_HANDLER, Timeout=10)
    sqs = localstack.client("sqs", account=ACCOUNT)
    dlq_url, dlq_arn = make_queue(localstack)
    url, arn = make_queue(
        localstack,
        VisibilityTimeout="2",
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
    )
    send(localstack, url, [{"id": i, "fail": i == 3} for i in range(5)])
    localstack.client("lambda", account=ACCOUNT).create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=arn,
        BatchSize=5,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    moved = wait_for(
        lambda: sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages"),
        30,
        "the failing message in the DLQ",
    )
    assert [json.loads(m["Body"]) for m in moved] == [{"id": 3, "fail": True}]
    time.sleep(1)  # let the last receive settle
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    seen = _seen(localstack, function)
    # the 4 good messages ran once each; the failing one was received maxReceiveCount (2) times
    assert sorted(seen) == [0, 1, 2, 3, 3, 4], seen


def _seen(instance, function: str) -> list[int]:
    logs = instance.client("logs", account=ACCOUNT)
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}", filterPattern="seen")
    return [
        json.loads(e["message"])["seen"] for e in events["events"] if e["message"].startswith("{")
    ]
