"""What the topology's AWS resources hold now, by correlation_id: courier records and queues.

Queues are read without consuming them: every received message is made visible again at once,
so a report can be run any number of times and the queues' consumers (if any) are not starved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from lab_kernel.endpoints import Endpoints, TopologyEndpoints


def client(endpoints: Endpoints, topology: TopologyEndpoints, service: str, read_timeout: float = 60, attempts: int = 2) -> Any:
    """A boto3 client in the topology's emulated account (LocalStack maps the access key to it)."""
    return boto3.client(
        service,
        endpoint_url=topology.localstack_url or endpoints.localstack_url,
        region_name=topology.region,
        aws_access_key_id=topology.account,
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": attempts}, read_timeout=read_timeout, connect_timeout=5),
    )


def find_correlation_id(value: Any, depth: int = 0) -> str | None:
    """The first `correlation_id` anywhere in a message body.

    A delivery-queue or DLQ message is the EventBridge event (detail.meta_data.correlation_id);
    an on-failure destination record wraps it in requestPayload; bodies may be JSON in a string.
    """
    if depth > 8:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("{", "[")):
            try:
                return find_correlation_id(json.loads(text), depth + 1)
            except json.JSONDecodeError:
                return None
        return None
    if isinstance(value, dict):
        found = value.get("correlation_id")
        if isinstance(found, str) and found:
            return found
        for item in value.values():
            found = find_correlation_id(item, depth + 1)
            if found:
                return found
    if isinstance(value, list):
        for item in value:
            found = find_correlation_id(item, depth + 1)
            if found:
                return found
    return None


@dataclass(frozen=True)
class QueueContents:
    correlation_ids: frozenset[str]
    messages_read: int
    unreadable: int  # messages with no correlation_id in them
    visible: int  # ApproximateNumberOfMessages
    not_visible: int  # ApproximateNumberOfMessagesNotVisible (being processed)
    delayed: int

    @property
    def pending(self) -> int:
        return self.visible + self.not_visible + self.delayed


def queue_attributes(sqs: Any, url: str) -> dict[str, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {k: int(v) for k, v in attrs.items()}


def read_queue(sqs: Any, url: str, max_rounds: int = 2000) -> QueueContents:
    """Peek at every visible message: receive with a short hold, then release them all."""
    attrs = queue_attributes(sqs, url)
    ids: set[str] = set()
    seen: set[str] = set()
    unreadable = 0
    handles: list[str] = []
    empty_rounds = 0
    for _ in range(max_rounds):
        # VisibilityTimeout 30: long enough to page through the queue without seeing a message
        # twice; released at the end so nothing waits the 30 s.
        page = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0,
            AttributeNames=["All"],
        )
        messages = page.get("Messages", [])
        if not messages:
            empty_rounds += 1
            if empty_rounds >= 2:
                break
            continue
        empty_rounds = 0
        for message in messages:
            handles.append(message["ReceiptHandle"])
            if message["MessageId"] in seen:
                continue
            seen.add(message["MessageId"])
            cid = find_correlation_id(message.get("Body", ""))
            if cid:
                ids.add(cid)
            else:
                unreadable += 1
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
            for i, h in enumerate(handles[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
    return QueueContents(
        correlation_ids=frozenset(ids),
        messages_read=len(seen),
        unreadable=unreadable,
        visible=attrs.get("ApproximateNumberOfMessages", 0),
        not_visible=attrs.get("ApproximateNumberOfMessagesNotVisible", 0),
        delayed=attrs.get("ApproximateNumberOfMessagesDelayed", 0),
    )


@dataclass(frozen=True)
class CourierRecord:
    correlation_id: str
    deliveries: int
    first_delivered_at: str | None


def scan_deliveries(dynamodb: Any, table: str) -> Iterator[CourierRecord]:
    """Every order the courier recorded (the courier's own truth of what it was given)."""
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        # A missing or broken table raises (ClientError): the caller says so and falls back,
        # rather than reporting "no duplicates" it never checked.
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            cid = item.get("correlation_id", {}).get("S")
            if not cid:
                continue
            yield CourierRecord(
                correlation_id=cid,
                deliveries=int(item.get("deliveries", {}).get("N", "1")),
                first_delivered_at=item.get("first_delivered_at", {}).get("S"),
            )
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
