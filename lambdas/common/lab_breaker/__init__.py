"""lab_breaker: a circuit breaker around the courier call, shared by all environments.

    from lab_breaker import CircuitBreakerError, courier_breaker, park_order
    breaker = courier_breaker()              # settings from env (CB_*), state in DynamoDB
    try:
        breaker.call(call_courier, order)
    except CircuitBreakerError:
        park_order(sqs, breaker.settings.retry_queue_url, order, "circuit open")
"""

from __future__ import annotations

from typing import Any

from pybreaker import CircuitBreakerError

from .breaker import BreakerSettings, SharedCircuitBreaker, TransitionLogger, enabled_by_env
from .fallback import FallbackUnavailable, park_delay, park_order
from .storage import DynamoDBCircuitStorage


def courier_breaker(dynamodb: Any = None, settings: BreakerSettings | None = None,
                    exclude: list[Any] | None = None) -> SharedCircuitBreaker:
    """The delivery function's breaker: build once per environment, at module load."""
    if dynamodb is None:
        import boto3

        dynamodb = boto3.client("dynamodb")
    return SharedCircuitBreaker(settings or BreakerSettings.from_env(), dynamodb, exclude=exclude)


__all__ = [
    "BreakerSettings",
    "CircuitBreakerError",
    "DynamoDBCircuitStorage",
    "FallbackUnavailable",
    "SharedCircuitBreaker",
    "TransitionLogger",
    "courier_breaker",
    "enabled_by_env",
    "park_delay",
    "park_order",
]
