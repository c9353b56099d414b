"""How many batches an SQS event source mapping may have in flight (pure logic).

AWS (lambda/latest/dg/services-sqs-scaling.html): with messages waiting, Lambda starts with five
concurrent batches and adds up to 300 more per minute while messages are still available, up to
1,250 batches in flight; `ScalingConfig.MaximumConcurrency` (2-1000) caps that number. When the
queue is drained the pollers scale back down. Reserved and account concurrency cap it further
through throttling (handled where invocations are made).
"""

from __future__ import annotations

import time
from collections.abc import Callable

INITIAL_CONCURRENCY = 5
SCALE_UP_PER_MINUTE = 300
MAX_CONCURRENCY = 1250


class ConcurrencyLimit:
    def __init__(
        self, maximum_concurrency: int | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if maximum_concurrency is not None and maximum_concurrency < 1:
            raise ValueError(f"MaximumConcurrency must be >= 1, got {maximum_concurrency}")
        self.maximum = maximum_concurrency
        self._clock = clock
        self._backlog_since: float | None = None

    def allowed(self) -> int:
        """Batches that may be in flight now."""
        if self.maximum is not None:
            return self.maximum
        if self._backlog_since is None:
            return INITIAL_CONCURRENCY
        minutes = (self._clock() - self._backlog_since) / 60.0
        return min(MAX_CONCURRENCY, INITIAL_CONCURRENCY + int(minutes * SCALE_UP_PER_MINUTE))

    def saw_messages(self) -> None:
        """A poll found messages: the backlog (and the scale-up) starts now, if not already."""
        if self._backlog_since is None:
            self._backlog_since = self._clock()

    def drained(self) -> None:
        """A poll found the queue empty with nothing in flight: scale back down."""
        self._backlog_since = None
