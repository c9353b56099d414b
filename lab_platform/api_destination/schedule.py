"""When an EventBridge API destination sends each event: its rate limit and its retry policy.

Pure logic with an injectable clock (`TokenBucket`'s); `api_destination/patch.py` runs it.

AWS (EventBridge user guide, "API destinations as targets" and "How EventBridge retries delivering
events"; API reference, `ApiDestination.InvocationRateLimitPerSecond`, `RetryPolicy`):
- `InvocationRateLimitPerSecond` caps the requests per second sent to the endpoint; events beyond
  it wait (a rate below the arrival rate delays them, up to the retry window) instead of failing.
- A request that fails with 401, 407, 409, 429 or a 5xx, or takes more than 5 s, is retried with
  exponential back-off and jitter, for up to `MaximumEventAgeInSeconds` (default 24 h) and
  `MaximumRetryAttempts` (default 185); other answers are final. An event that runs out goes to
  the target's dead-letter queue, if it has one, else it is dropped.
AWS does not publish the back-off's base or cap: `backoff` takes full jitter over 1 s doubling
to at most 5 minutes (the same bounds as the lab's async throttle retries), a stated choice.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab_platform.apigateway.token_bucket import TokenBucket

REQUEST_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_ATTEMPTS = 185
DEFAULT_MAX_AGE_SECONDS = 24 * 3600
RETRIABLE_STATUSES = frozenset({401, 407, 409, 429})
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0


def retriable(status: int | None) -> bool:
    """Whether an answer is retried; None stands for no answer (timeout, refused connection)."""
    return status is None or status in RETRIABLE_STATUSES or 500 <= status <= 599


def backoff(retry: int, rng: random.Random) -> float:
    """Seconds before retry number `retry` (1 for the first): full jitter, exponential cap."""
    return rng.uniform(0.0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (retry - 1)))


def _paced(rate: float, clock: Callable[[], float]) -> TokenBucket:
    """AWS states a maximum per second and no burst: a bucket of one token paces the requests
    evenly (1/rate apart), so no one-second window holds more than the rate (plus the edge)."""
    return TokenBucket(rate, 1.0, clock)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # retries after the first request
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS

    @classmethod
    def of_target(cls, target: dict[str, Any]) -> RetryPolicy:
        """A rule target's `RetryPolicy`, AWS's defaults where it says nothing."""
        policy = target.get("RetryPolicy") or {}
        return cls(int(policy.get("MaximumRetryAttempts", DEFAULT_MAX_ATTEMPTS)),
                   float(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_SECONDS)))


@dataclass(order=True)
class Delivery:
    """One event on its way to one API destination."""

    due: float
    sequence: int
    payload: Any = field(compare=False)  # what the sender needs (request, target), opaque here
    first_seen: float = field(compare=False, default=0.0)
    retries: int = field(compare=False, default=0)


@dataclass(frozen=True)
class Verdict:
    """What happens after an answer: `retry_at` set, or final (`dead` when it ends undelivered)."""

    retry_at: float | None = None
    dead: bool = False
    reason: str = ""
    # the RetryPolicy limit that ran out (AWS's EXHAUSTED_RETRY_CONDITION); None for an answer
    # that is never retried
    exhausted: str | None = None


class DestinationSchedule:
    """The events waiting for one API destination: due ones leave at the destination's rate.

    `take` hands out every event that is due and has a token; `wait` says how long until the next
    could leave. `answered` decides retry or end from the answer and the policy.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.bucket = _paced(rate, clock)
        self._heap: list[Delivery] = []
        self._sequence = itertools.count()
        self._lock = threading.Lock()
        self._in_flight = 0  # taken, not yet answered

    def set_rate(self, rate: float) -> None:
        if rate != self.bucket.rate:
            self.bucket = _paced(rate, self.clock)

    def add(self, payload: Any) -> Delivery:
        now = self.clock()
        delivery = Delivery(now, next(self._sequence), payload, first_seen=now)
        with self._lock:
            heapq.heappush(self._heap, delivery)
        return delivery

    def __len__(self) -> int:
        with self._lock:
            return len(self._heap)

    def undecided(self) -> int:
        """Events whose fate is not known yet: waiting (rate limit, back-off) or being sent."""
        with self._lock:
            return len(self._heap) + self._in_flight

    def take(self) -> list[Delivery]:
        """The due events that may be sent now, earliest first, each with a token taken."""
        now = self.clock()
        out: list[Delivery] = []
        with self._lock:
            while self._heap and self._heap[0].due <= now and self.bucket.try_take():
                out.append(heapq.heappop(self._heap))
            self._in_flight += len(out)
        return out

    def wait(self) -> float | None:
        """Seconds until `take` could return something (None: nothing waits)."""
        with self._lock:
            if not self._heap:
                return None
            until_due = self._heap[0].due - self.clock()
        rate = self.bucket.rate
        until_token = 0.0 if self.bucket.tokens >= 1.0 else ((1.0 - self.bucket.tokens) / rate if rate else 1.0)
        return max(0.0, until_due, until_token)

    def answered(self, delivery: Delivery, status: int | None, policy: RetryPolicy) -> Verdict:
        """The request for `delivery` was answered `status` (None: none in time). A retry goes
        back on the schedule; the verdict says what became of the event."""
        with self._lock:
            self._in_flight -= 1
        if status is not None and 200 <= status <= 299:
            return Verdict()
        if not retriable(status):
            return Verdict(dead=True, reason=f"HTTP {status} is not retried")
        now = self.clock()
        if delivery.retries >= policy.max_attempts:
            return Verdict(dead=True, reason=f"{policy.max_attempts} retries exhausted",
                           exhausted="MaximumRetryAttempts")
        retry_at = now + backoff(delivery.retries + 1, self.rng)
        if retry_at - delivery.first_seen > policy.max_age_seconds:
            return Verdict(dead=True, reason=f"older than {policy.max_age_seconds:.0f} s",
                           exhausted="MaximumEventAgeInSeconds")
        delivery.retries += 1
        delivery.due = retry_at
        delivery.sequence = next(self._sequence)
        with self._lock:
            heapq.heappush(self._heap, delivery)
        return Verdict(retry_at=retry_at)
