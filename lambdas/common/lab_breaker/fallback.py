"""Fallback that keeps the order: park it on a retry queue instead of dropping it.

The retry queue is created by `python -m resilience.breaker on` with an event source mapping back
to the delivery function and a delay of about the breaker's reset timeout, so a parked order comes
back when the circuit may be half-open again. The message body is the order itself (the same JSON
the delivery function receives), so the function needs no special case to handle it.
"""

from __future__ import annotations

import json
from typing import Any


class FallbackUnavailable(RuntimeError):
    """No retry queue configured: the caller must fail the record so its own retry keeps it."""


def park_order(sqs: Any, queue_url: str | None, order: dict[str, Any], reason: str,
               delay_seconds: int = 10) -> str:
    """Send the order to the retry queue; returns the SQS MessageId."""
    if not queue_url:
        raise FallbackUnavailable("circuit open and CB_RETRY_QUEUE_URL is not set")
    response = sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(order),
        DelaySeconds=max(0, min(900, int(delay_seconds))),
        MessageAttributes={
            "lab_parked_reason": {"DataType": "String", "StringValue": reason[:256]},
        },
    )
    return response["MessageId"]
