"""Token bucket as API Gateway uses it: `burst` tokens at most, refilled at `rate` per second.

A request takes one token; none left means 429. Pure logic; the clock is injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate < 0 or burst < 0:
            raise ValueError(f"token bucket needs rate >= 0 and burst >= 0, got {rate}, {burst}")
        self.rate = float(rate)
        # AWS: a burst below 1 with a positive rate still lets single requests through
        self.capacity = max(float(burst), 1.0 if rate > 0 else 0.0)
        self._clock = clock
        self._tokens = self.capacity  # a bucket starts full
        self._stamp = clock()
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        """Take one token if there is one; never blocks."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    @property
    def tokens(self) -> float:
        with self._lock:
            elapsed = self._clock() - self._stamp
            return min(self.capacity, self._tokens + elapsed * self.rate)
