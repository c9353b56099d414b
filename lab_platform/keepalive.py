"""Idle execution environments expire through one sweeper thread, not a timer thread per invoke.

AWS: an idle execution environment is frozen and eventually reclaimed; invoking it costs nothing
for bookkeeping.
LocalStack 4.14: `ExecutionEnvironment.release` starts a new `threading.Timer` thread after every
invocation (the keepalive, LAMBDA_KEEPALIVE_MS) and `reserve` cancels it: one thread start and stop
per invocation, about 7 % of the LocalStack process's CPU at a few hundred invocations per second.
Here: `release` records a deadline with a single sweeper thread that stops environments idle past
it; `reserve`/`stop` cancel it exactly as they cancelled the timer. Behaviour is unchanged except
that expiry is checked every `SWEEP_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from localstack import config
from localstack.services.lambda_.invocation.execution_environment import (
    ExecutionEnvironment,
    InvalidStatusException,
    RuntimeStatus,
)
from localstack.services.lambda_.invocation.lambda_models import InitializationType
from localstack.utils.patch import Patches

LOG = logging.getLogger(__name__)

SWEEP_SECONDS = 0.5


class Deadline:
    """Stands in for the Timer LocalStack kept in `keepalive_timer`: only `cancel()` is used."""

    __slots__ = ("at", "callback", "cancelled")

    def __init__(self, at: float, callback: Callable[[], None]) -> None:
        self.at = at
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Sweeper:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, background: bool = True
    ) -> None:
        self._clock = clock
        self._background = background
        self._lock = threading.Lock()
        self._deadlines: dict[int, Deadline] = {}
        self._thread: threading.Thread | None = None

    def schedule(self, owner: object, delay: float, callback: Callable[[], None]) -> Deadline:
        deadline = Deadline(self._clock() + delay, callback)
        with self._lock:
            self._deadlines[id(owner)] = deadline  # replaces the owner's previous one
            if self._thread is None and self._background:
                self._thread = threading.Thread(target=self._run, name="lab-keepalive", daemon=True)
                self._thread.start()
        return deadline

    def due(self) -> list[Deadline]:
        """Take the deadlines that passed (cancelled ones are dropped)."""
        now = self._clock()
        with self._lock:
            expired = [k for k, d in self._deadlines.items() if d.cancelled or d.at <= now]
            taken = [self._deadlines.pop(k) for k in expired]
        return [d for d in taken if not d.cancelled]

    def _run(self) -> None:
        while True:
            time.sleep(SWEEP_SECONDS)
            for deadline in self.due():
                try:
                    deadline.callback()
                except Exception:  # noqa: BLE001 - as a Timer thread: log, keep sweeping
                    LOG.exception("keepalive expiry failed")


SWEEPER = Sweeper()


def _release(self: ExecutionEnvironment) -> None:
    # LocalStack's release(), with the keepalive timer thread replaced by a sweeper deadline
    self.last_returned = datetime.now()
    with self.status_lock:
        if self.status != RuntimeStatus.INVOKING:
            raise InvalidStatusException(
                f"Execution environment {self.id} can only be set to status ready while running."
                f" Current status: {self.status}"
            )
        self.status = RuntimeStatus.READY
    if self.initialization_type == InitializationType.on_demand:
        self.keepalive_timer = SWEEPER.schedule(
            self, config.LAMBDA_KEEPALIVE_MS / 1000, self.keepalive_passed
        )


def patches() -> Patches:
    p = Patches()
    p.function(ExecutionEnvironment.release, _release, pass_target=False)
    return p
