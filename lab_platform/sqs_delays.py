"""SQS delayed messages become visible when their delay ends, not on the next whole-second tick.

AWS: a message sent with DelaySeconds=n is invisible for n seconds from its sending ("delay
queues", SQS developer guide), each message on its own clock. Lambda's asynchronous invocation
retries throttled events on internal queues with delays of 1, 2, 4 ... s up to 5 minutes
(Lambda developer guide, "How Lambda handles errors and retries with asynchronous invocation").
LocalStack 4.14: one `QueueUpdateWorker` moves delayed messages to the visible queue once a
second, so a delay of n s lasts n to n + 1 s, and every message due within the same second is
released at one instant. The lab's async throttle retries (`async_invoke/scaling.py`) ride on
those delays: in the storm they arrived in bursts once a second, each burst finding the few
slots the second had freed already taken by synchronous callers (the notify handler, the
courier's own function), which arrive continuously. Measured in the seed run: delivery
throttled 15,729 times against 5,336 simulated, notify 667 against 2,240. Playing the same
once-a-second release in `report.simulate` moves its figures the same way (delivery 7,700-8,700,
notify 1,260-1,440, accepted orders +8%).
Here: every delayed message also gets a timer for its own due time, on one scheduler thread;
at that time its queue moves what is due to the visible queue, waking a waiting long poll. The
once-a-second worker stays as it was (visibility timeouts, and a safety net).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from localstack.utils.patch import Patch, Patches

LOG = logging.getLogger(__name__)
# `SqsMessage.is_delayed` holds while now <= created + delay: release just after that instant
EPSILON_SECONDS = 0.001


class DelayTimers:
    """Callbacks at given times, on one daemon thread; `clock` and the heap are all it needs."""

    def __init__(self, clock: Callable[[], float] = time.time, name: str = "lab-sqs-delays") -> None:
        self._clock = clock
        self._name = name
        self._heap: list[tuple[float, int, Callable[[], Any]]] = []
        self._sequence = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def at(self, when: float, callback: Callable[[], Any]) -> None:
        with self._wake:
            heapq.heappush(self._heap, (when, next(self._sequence), callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify()

    def pop_due(self, now: float) -> list[Callable[[], Any]]:
        """The callbacks due at `now`, earliest first, removed from the heap."""
        with self._wake:
            due = []
            while self._heap and self._heap[0][0] <= now:
                due.append(heapq.heappop(self._heap)[2])
            return due

    def next_due(self) -> float | None:
        with self._wake:
            return self._heap[0][0] if self._heap else None

    def _run(self) -> None:
        while True:
            for callback in self.pop_due(self._clock()):
                try:
                    callback()
                except Exception:  # noqa: BLE001 - a deleted queue must not stop the timers
                    LOG.debug("delayed-message release failed", exc_info=True)
            with self._wake:
                wait = None if not self._heap else max(0.0, self._heap[0][0] - self._clock())
                if wait is None or wait > 0:
                    self._wake.wait(wait)


TIMERS = DelayTimers()


def _release_on_time(queue_class: type) -> Patch:
    original = queue_class.put

    def put(self, message, *args, **kwargs):
        stored = original(self, message, *args, **kwargs)
        delay = getattr(stored, "delay_seconds", None)
        if delay and stored.is_delayed:
            TIMERS.at(stored.created + delay + EPSILON_SECONDS, self.enqueue_delayed_messages)
        return stored

    return Patch(queue_class, "put", put)


def patches() -> Patches:
    from localstack.services.sqs.models import FifoQueue, StandardQueue

    return Patches([_release_on_time(StandardQueue), _release_on_time(FifoQueue)])
