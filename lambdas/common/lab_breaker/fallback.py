"""Fallback that keeps the order: park it on a retry queue instead of dropping it.

The retry queue is created by `python -m resilience.breaker on` (or bootstrap) with an event source
mapping back to the delivery function; a parked order is delayed at least the breaker's reset
timeout, so it comes back when the circuit may be half-open again. The message body is the order itself (the same JSON
the delivery function receives), so the function needs no special case to handle it.

A parked order waits longer each time it is parked again, with jitter (`park_delay`): with one
fixed delay every order parked in the same second comes back in the same second, and the first
calls of that herd trip the circuit again, so a long outage parks the same orders over and over in
lockstep (the smoke storm's simulation: 1.1 million parks for 3,760 orders). Exponential back-off
with jitter is the remedy AWS recommends for retries ("Timeouts, retries, and backoff with jitter",
Amazon Builders' Library; "Exponential Backoff And Jitter", AWS Architecture Blog).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

MAX_DELAY_SECONDS = 900  # SQS's largest DelaySeconds
_MAX_DOUBLINGS = 16  # beyond this the 900 s cap holds for any timeout of a second or more


def park_delay(parks: int, timeout_s: float, rng: random.Random | None = None) -> int:
    """Whole seconds a parked order waits on the retry queue, given how often it was parked
    before: uniformly between the breaker's timeout (the circuit may be half-open by then) and the
    timeout doubled once per park so far (10-20 s, then 10-40 s, ...), within SQS's 900 s."""
    if parks < 0:
        raise ValueError(f"parks must be >= 0, got {parks}")
    low = min(MAX_DELAY_SECONDS, max(0, math.ceil(timeout_s)))
    high = min(MAX_DELAY_SECONDS, int(timeout_s * 2 ** min(parks + 1, _MAX_DOUBLINGS)))
    return (rng or random).randint(low, max(low, high))


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
