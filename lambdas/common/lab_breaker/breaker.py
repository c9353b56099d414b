"""A pybreaker CircuitBreaker whose circuit is shared by all environments through DynamoDB.

What pybreaker gives us: the CLOSED -> OPEN -> HALF_OPEN state machine, thresholds, listeners.
What we change, because pybreaker assumes one process:
- transitions are conditional writes (storage.transition), and only the winning environment
  announces a transition and resets counters; others adopt the new state silently. Without this
  an environment that merely notices HALF_OPEN would reset the half-open success count written by
  another one, and every environment would log and count every transition.
- HALF_OPEN admits one probe at a time across all environments (a lease in the item); every other
  call meets CircuitBreakerError and goes to the caller's fallback.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pybreaker import (
    STATE_CLOSED,
    STATE_HALF_OPEN,
    STATE_OPEN,
    CircuitBreaker,
    CircuitBreakerError,
    CircuitBreakerListener,
    CircuitBreakerState,
    CircuitClosedState,
    CircuitHalfOpenState,
    CircuitOpenState,
)

from .storage import DynamoDBCircuitStorage

T = TypeVar("T")
NAMESPACE = "ServerlessBoundaryLab"
STATE_LABEL = {STATE_CLOSED: "CLOSED", STATE_OPEN: "OPEN", STATE_HALF_OPEN: "HALF_OPEN"}


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class BreakerSettings:
    """Seed thresholds (failure 3, success 2, timeout 10 s), overridable per function by env."""

    table: str = "lab-circuit-breaker"
    name: str = "courier"
    failure_threshold: int = 3
    success_threshold: int = 2
    reset_timeout_s: float = 10.0
    probe_lease_s: float = 10.0  # longer than one courier call; frees a probe whose env died
    retry_queue_url: str | None = None

    @classmethod
    def from_env(cls) -> BreakerSettings:
        return cls(
            table=os.environ.get("CB_TABLE", cls.table),
            name=os.environ.get("CB_NAME", cls.name),
            failure_threshold=int(_env_number("CB_FAILURE_THRESHOLD", cls.failure_threshold)),
            success_threshold=int(_env_number("CB_SUCCESS_THRESHOLD", cls.success_threshold)),
            reset_timeout_s=_env_number("CB_TIMEOUT_SECONDS", cls.reset_timeout_s),
            probe_lease_s=_env_number("CB_PROBE_LEASE_SECONDS", cls.probe_lease_s),
            retry_queue_url=os.environ.get("CB_RETRY_QUEUE_URL") or None,
        )


def enabled_by_env() -> bool:
    """The delivery function's switch: `CIRCUIT_BREAKER=on`."""
    return os.environ.get("CIRCUIT_BREAKER", "off").strip().lower() in ("on", "1", "true", "yes")


class _SharedHalfOpenState(CircuitHalfOpenState):
    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        breaker: SharedCircuitBreaker = self._breaker  # type: ignore[assignment]
        storage = breaker.storage
        if not storage.acquire_probe(breaker.owner, breaker.settings.probe_lease_s):
            raise CircuitBreakerError("half-open: the single probe is in flight elsewhere")
        try:
            return super().call(func, *args, **kwargs)
        finally:
            storage.release_probe(breaker.owner)


class _SharedOpenState(CircuitOpenState):
    def before_call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # same as pybreaker's, but the half-open transition is conditional on the very
        # `opened_at` we judged the timeout by: one half-open per open period, whoever races
        breaker: SharedCircuitBreaker = self._breaker  # type: ignore[assignment]
        seen = breaker.storage.opened_at_raw()
        if seen is not None and time.time() < seen + breaker.reset_timeout:
            raise CircuitBreakerError("Timeout not elapsed yet, circuit breaker still open")
        breaker._move(STATE_HALF_OPEN, expected_opened_at=seen)
        return breaker.call(func, *args, **kwargs)


class SharedCircuitBreaker(CircuitBreaker):
    def __init__(self, settings: BreakerSettings, dynamodb: Any,
                 listeners: list[CircuitBreakerListener] | None = None,
                 exclude: list[Any] | None = None) -> None:
        self.settings = settings
        self.storage = DynamoDBCircuitStorage(settings.table, settings.name, dynamodb)
        # one id per environment (process): owner of the probe lease
        self.owner = f"{os.environ.get('AWS_LAMBDA_LOG_STREAM_NAME', 'env')}/{os.getpid()}/" \
                     f"{uuid.uuid4().hex[:8]}"
        super().__init__(
            fail_max=settings.failure_threshold,
            reset_timeout=settings.reset_timeout_s,
            success_threshold=settings.success_threshold,
            exclude=exclude,
            listeners=listeners if listeners is not None else [TransitionLogger()],
            state_storage=self.storage,
            name=settings.name,
        )

    def _create_new_state(self, new_state: str, prev_state: CircuitBreakerState | None = None,
                          notify: bool = False) -> Any:
        if new_state == STATE_HALF_OPEN:
            return _SharedHalfOpenState(self, prev_state=prev_state, notify=notify)
        if new_state == STATE_OPEN:
            return _SharedOpenState(self, prev_state=prev_state, notify=notify)
        if new_state == STATE_CLOSED:
            return CircuitClosedState(self, prev_state=prev_state, notify=notify)
        return super()._create_new_state(new_state, prev_state, notify)

    # A change made by another environment is adopted without notify: no counter resets, no
    # duplicate log line or metric (the winner of the conditional write announced it).
    @property  # type: ignore[override]
    def state(self) -> Any:
        current = self.current_state
        if current != self._state.name:
            self._state = self._create_new_state(current, prev_state=self._state, notify=False)
        return self._state

    @state.setter
    def state(self, state_str: str) -> None:
        with self._lock:
            self._state = self._create_new_state(state_str, prev_state=self._state, notify=True)

    def _move(self, new_state: str, expected_opened_at: float | None = None) -> bool:
        won = self.storage.transition(new_state, self.owner, self.settings.probe_lease_s,
                                      expected_opened_at)
        if won:
            self.state = new_state  # notify: listeners log and count, counters reset
        else:
            self._state = self._create_new_state(self.current_state, self._state, notify=False)
        return won

    def open(self) -> bool:
        with self._lock:
            self._move(STATE_OPEN)
            return self._throw_new_error_on_trip

    def half_open(self) -> None:
        with self._lock:
            self._move(STATE_HALF_OPEN, expected_opened_at=self.storage.opened_at_raw())

    def close(self) -> None:
        with self._lock:
            self._move(STATE_CLOSED)


class TransitionLogger(CircuitBreakerListener):
    """Logs `CircuitBreaker state: OPEN` (the seed's wording) and emits EMF CircuitStateChange."""

    def state_change(self, cb: CircuitBreaker, old_state: CircuitBreakerState | None,
                     new_state: CircuitBreakerState) -> None:
        label = STATE_LABEL.get(new_state.name, new_state.name)
        previous = STATE_LABEL.get(old_state.name, old_state.name) if old_state else None
        record = {
            "level": "WARNING" if label == "OPEN" else "INFO",
            "message": f"CircuitBreaker state: {label}",
            "circuit": cb.name,
            "state": label,
            "previous_state": previous,
            "function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            "timestamp": datetime.now(UTC).isoformat(),
        }
        sys.stdout.write(json.dumps(record) + "\n")
        try:
            from aws_lambda_powertools.metrics import MetricUnit, single_metric

            with single_metric(name="CircuitStateChange", unit=MetricUnit.Count, value=1,
                               namespace=NAMESPACE) as metric:
                metric.add_dimension(name="state", value=label)
        except Exception as exc:  # noqa: BLE001 - a metric must not change the delivery outcome
            sys.stdout.write(json.dumps({"level": "WARNING", "message": f"EMF failed: {exc}"}) + "\n")
        sys.stdout.flush()
