"""How many batches an SQS event source mapping may have in flight (pure logic).

AWS (lambda/latest/dg/services-sqs-scaling.html): with messages waiting, Lambda starts with five
concurrent batches and adds up to 300 more per minute while messages are still available, up to
1,250 batches in flight; `ScalingConfig.MaximumConcurrency` (2-1000) caps that number. When the
queue is drained the pollers scale back down. Reserved and account concurrency cap it further
through throttling (handled where invocations are made).

Throttles (lambda/latest/dg/services-sqs-errorhandling.html, "Backoff strategy for failed
invocations"): "If the invocation fails due to throttling, Lambda gradually backs off retries by
reducing the amount of concurrency allocated to your Amazon SQS event source mapping." AWS gives
no figures; here each throttled invocation takes one batch from the allowance, down to 2 (the
fewest concurrent batches AWS names), and the allowance grows back at the scale-up rate (300 a
minute). A mapping held at the account's limit so settles near 5 throttles a second instead of
re-trying every batch it holds: the circuit breaker's uncapped retry mapping, without this,
re-tried 400 throttled batches every 2 s (249,223 throttles in the catalogue's smoke run; the
same storm with this back-off and parks jittered: 1,817; bootstrap now caps that mapping too).
The same section says function errors reduce the allowance too; that is not modelled (the lab's
mappings see few, and `report.simulate` holds a capped mapping at its maximum).
"""

from __future__ import annotations

import time
from collections.abc import Callable

INITIAL_CONCURRENCY = 5
SCALE_UP_PER_MINUTE = 300
MAX_CONCURRENCY = 1250
BACKED_OFF_FLOOR = 2  # "can optimize to as few as 2 concurrent batches"


class ConcurrencyLimit:
    def __init__(
        self, maximum_concurrency: int | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if maximum_concurrency is not None and maximum_concurrency < 1:
            raise ValueError(f"MaximumConcurrency must be >= 1, got {maximum_concurrency}")
        self.maximum = maximum_concurrency
        self._clock = clock
        self._backlog_since: float | None = None
        self._backed_off = 0.0  # batches taken away by throttles, won back at the scale-up rate
        self._backed_off_at = clock()

    def allowed(self) -> int:
        """Batches that may be in flight now."""
        scaled = self._scaled()
        self._win_back()
        return max(min(scaled, BACKED_OFF_FLOOR), int(scaled - self._backed_off))

    def throttled(self) -> None:
        """An invocation of the mapping was throttled: one batch fewer may be in flight."""
        self._win_back()
        self._backed_off = min(self._backed_off + 1.0, max(0.0, self._scaled() - BACKED_OFF_FLOOR))

    def _scaled(self) -> int:
        if self.maximum is not None:
            return self.maximum
        if self._backlog_since is None:
            return INITIAL_CONCURRENCY
        minutes = (self._clock() - self._backlog_since) / 60.0
        return min(MAX_CONCURRENCY, INITIAL_CONCURRENCY + int(minutes * SCALE_UP_PER_MINUTE))

    def _win_back(self) -> None:
        now = self._clock()
        regained = (now - self._backed_off_at) * SCALE_UP_PER_MINUTE / 60.0
        self._backed_off = max(0.0, self._backed_off - regained)
        self._backed_off_at = now

    def saw_messages(self) -> None:
        """A poll found messages: the backlog (and the scale-up) starts now, if not already."""
        if self._backlog_since is None:
            self._backlog_since = self._clock()

    def drained(self) -> None:
        """A poll found the queue empty with nothing in flight: scale back down."""
        self._backlog_since = None
