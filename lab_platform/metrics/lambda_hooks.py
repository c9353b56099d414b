"""Lambda platform metrics, hooked into LocalStack's Lambda service layers (not an executor).

AWS publishes Invocations, Errors, Throttles, Duration, ConcurrentExecutions and the async
metrics for every function. LocalStack 4.14 publishes only Invocations and Errors to CloudWatch.
These wrappers sit on the layers every invocation crosses, whatever runtime executor runs it:
- `LambdaVersionManager.invoke`: sync, async (event poller) and event-source-mapping invokes;
  a `TooManyRequestsException` from the concurrency lease is a throttle.
- `ExecutionEnvironment.invoke`: the time the function ran (AWS Duration excludes cold start).
- `LambdaEventManager.enqueue_event`: AsyncEventsReceived.
- the async `Poller`: retries, drops, destination and DLQ deliveries.
Concurrency gauges are read live from LocalStack's CountingService by `collectors`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from localstack.aws.api.lambda_ import TooManyRequestsException
from localstack.services.lambda_.invocation import event_manager, execution_environment
from localstack.services.lambda_.invocation.internal_sqs_queue import FakeSqsClient
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationType
from localstack.services.lambda_.invocation.version_manager import LambdaVersionManager
from localstack.utils.patch import Patches

from lab_platform import lambda_service
from lab_platform.metrics import registry as m

LOG = logging.getLogger(__name__)

# Set while an async Poller handles one event: any message it sends to its queue is a retry.
_poller_context = threading.local()


def labels(version: FunctionVersion) -> dict[str, str]:
    vid = version.id
    return {"account": vid.account, "region": vid.region, "function_name": vid.function_name}


def _version_invoke(fn, self: LambdaVersionManager, *, invocation) -> Any:
    lab = labels(self.function_version)
    if invocation.invocation_type == InvocationType.Event and invocation.invoke_time:
        age = (datetime.now() - invocation.invoke_time).total_seconds()
        m.async_event_age.labels(**lab).observe(max(age, 0.0))
    try:
        result = fn(self, invocation=invocation)
    except TooManyRequestsException:
        m.lambda_throttles.labels(**lab).inc()
        raise
    m.lambda_invocations.labels(**lab).inc()
    if result.is_error:
        m.lambda_errors.labels(**lab).inc()
    return result


def _environment_invoke(fn, self, invocation) -> Any:
    started = time.perf_counter()
    try:
        return fn(self, invocation)
    finally:
        m.lambda_duration.labels(**labels(self.function_version)).observe(
            time.perf_counter() - started
        )


def _enqueue_event(fn, self, invocation) -> Any:
    result = fn(self, invocation)
    m.async_received.labels(**labels(self.version_manager.function_version)).inc()
    return result


def _handle_message(fn, self, message: dict) -> Any:
    _poller_context.labels = labels(self.version_manager.function_version)
    try:
        return fn(self, message)
    finally:
        _poller_context.labels = None


def _fake_sqs_send(fn, self, *args: Any, **kwargs: Any) -> Any:
    result = fn(self, *args, **kwargs)
    # Only the Poller's retry paths (throttle/system error, function error) send while it
    # handles an event; the first enqueue happens in LambdaEventManager, outside that context.
    if lab := getattr(_poller_context, "labels", None):
        m.async_retried.labels(**lab).inc()
    return result


def _success_destination(fn, self, sqs_invocation, invocation_result, event_invoke_config):
    fn(self, sqs_invocation, invocation_result, event_invoke_config)
    if _destination(event_invoke_config, "OnSuccess"):
        m.destination_deliveries.labels(
            **labels(self.version_manager.function_version), destination_type="on_success"
        ).inc()


def _failure_destination(fn, self, sqs_invocation, invocation_result, event_invoke_config, cause):
    fn(self, sqs_invocation, invocation_result, event_invoke_config, cause)
    if _destination(event_invoke_config, "OnFailure"):
        m.destination_deliveries.labels(
            **labels(self.version_manager.function_version), destination_type="on_failure"
        ).inc()


def _dead_letter_queue(fn, self, sqs_invocation, invocation_result):
    # LocalStack calls this for every event it gives up on, DLQ configured or not.
    version = self.version_manager.function_version
    m.async_dropped.labels(**labels(version)).inc()
    fn(self, sqs_invocation, invocation_result)
    if version.config.dead_letter_arn:
        m.destination_deliveries.labels(**labels(version), destination_type="dlq").inc()


def _destination(event_invoke_config: Any, condition: str) -> str | None:
    if event_invoke_config is None:
        return None
    return (event_invoke_config.destination_config or {}).get(condition, {}).get("Destination")


def patches() -> Patches:
    lambda_service.capture()  # the collectors read its CountingService
    p = Patches()
    p.function(LambdaVersionManager.invoke, _version_invoke)
    p.function(execution_environment.ExecutionEnvironment.invoke, _environment_invoke)
    p.function(event_manager.LambdaEventManager.enqueue_event, _enqueue_event)
    p.function(event_manager.Poller.handle_message, _handle_message)
    p.function(FakeSqsClient.send_message, _fake_sqs_send)
    p.function(event_manager.Poller.process_success_destination, _success_destination)
    p.function(event_manager.Poller.process_failure_destination, _failure_destination)
    p.function(event_manager.Poller.process_dead_letter_queue, _dead_letter_queue)
    return p
