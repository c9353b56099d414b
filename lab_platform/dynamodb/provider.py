"""DynamoDB served by moto inside LocalStack (`PROVIDER_OVERRIDE_DYNAMODB=lab_moto`).

LocalStack 4.14's own DynamoDB provider forwards every call to DynamoDB Local, a Java server it
downloads from AWS at first use. These machines reach no such host, so every DynamoDB call
failed (InternalError, connection refused). moto, which LocalStack ships (moto-ext), implements
the API the lab uses - tables, conditional writes, updates, queries - in process, per account
and region, so the courier's duplicate ledger and the circuit breaker's shared state work
offline. Select LocalStack's own provider again with PROVIDER_OVERRIDE_DYNAMODB=default.

moto checks a condition and then writes, without a lock: 32 threads racing one conditional write
saw 2-4 winners in 5 of 60 races. DynamoDB makes each item write atomic, and the breaker's single
half-open probe and the courier's duplicate count rely on that, so every operation here runs
under one lock (moto answers in about a millisecond; the lab makes tens of calls per second).
"""

from __future__ import annotations

import threading

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider

_SERIAL = threading.RLock()


class MotoDynamoDBProvider(DynamodbApi, ServiceLifecycleHook):
    """Implements nothing itself: every operation falls through to moto."""


def _serialized(handler):
    def call(context, request):
        with _SERIAL:
            return handler(context, request)

    return call


def serialized_moto_dispatcher(provider: object) -> dict:
    from localstack.services.moto import MotoFallbackDispatcher

    return {operation: _serialized(handler) for operation, handler in MotoFallbackDispatcher(provider).items()}


@aws_provider(api="dynamodb", name="lab_moto")
def dynamodb_moto() -> Service:
    return Service.for_provider(MotoDynamoDBProvider(), dispatch_table_factory=serialized_moto_dispatcher)
