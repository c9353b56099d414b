"""DynamoDB served by moto inside LocalStack (`PROVIDER_OVERRIDE_DYNAMODB=lab_moto`).

LocalStack 4.14's own DynamoDB provider forwards every call to DynamoDB Local, a Java server it
downloads from AWS at first use. These machines reach no such host, so every DynamoDB call
failed (InternalError, connection refused). moto, which LocalStack ships (moto-ext), implements
the API the lab uses - tables, conditional writes, updates, queries - in process, per account
and region, so the courier's duplicate ledger and the circuit breaker's shared state work
offline. Select LocalStack's own provider again with PROVIDER_OVERRIDE_DYNAMODB=default.
"""

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider


class MotoDynamoDBProvider(DynamodbApi, ServiceLifecycleHook):
    """Implements nothing itself: every operation falls through to moto."""


@aws_provider(api="dynamodb", name="lab_moto")
def dynamodb_moto() -> Service:
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(MotoDynamoDBProvider(), dispatch_table_factory=MotoFallbackDispatcher)
