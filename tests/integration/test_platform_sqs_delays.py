"""Delayed SQS messages become visible at their own due time (lab_platform/sqs_delays.py).

Ten messages are sent 100 ms apart, each with DelaySeconds=1, and received as they come. On AWS
each is invisible for one second from its own sending, so they come out one by one, 100 ms apart.
LocalStack 4.14 releases delayed messages once a second: they come out in one or two clumps.
"""

from __future__ import annotations

import time
import uuid

import pytest

pytestmark = pytest.mark.integration

ACCOUNT = "666666666666"
MESSAGES = 10


def _batches(instance) -> list[list[str]]:
    sqs = instance.client("sqs", account=ACCOUNT)
    url = sqs.create_queue(QueueName=f"delays-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    for n in range(MESSAGES):
        sqs.send_message(QueueUrl=url, MessageBody=str(n), DelaySeconds=1)
        time.sleep(0.1)
    batches: list[list[str]] = []
    deadline = time.monotonic() + 30
    while sum(map(len, batches)) < MESSAGES and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
        if got:
            batches.append([m["Body"] for m in got])
    return batches


def test_each_delayed_message_is_released_on_its_own_clock(localstack):
    batches = _batches(localstack)
    assert [body for batch in batches for body in batch] == [str(n) for n in range(MESSAGES)]
    # one by one (two when a receive round trip took longer than the 100 ms between them)
    assert max(map(len, batches)) <= 3, batches


def test_localstacks_own_once_a_second_release_comes_in_clumps(localstack_with):
    """The switch off: what the patch changes (so the test above can tell the two apart)."""
    batches = _batches(localstack_with(LAB_PATCH_SQS_DELAYS_ON_TIME="0"))
    assert sorted(int(body) for batch in batches for body in batch) == list(range(MESSAGES))
    assert max(map(len, batches)) >= 5, batches
