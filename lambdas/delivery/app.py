"""DeliveryFunction: hands each accepted order to Ace Courier's scheduling API.

The same code serves every topology: an EventBridge event (async-invoke wiring, asynchronous
invocation straight from the rule) or an SQS batch (sqs-esm wiring, event source mapping with
partial batch responses). The order is the event's detail without the pipeline's `meta_data`;
the courier gets it with `x-api-key` and `x-correlation-id`. Retries are the seed demo's tenacity
policy, unchanged, because the retry storm they cause under load is what the lab reproduces.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import requests
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from lab_breaker import CircuitBreakerError, courier_breaker, enabled_by_env, park_delay, park_order
from lab_faults import inject_faults
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_fixed,
    wait_random,
)

SERVICE = "delivery-handler"
NAMESPACE = "ServerlessBoundaryLab"
ENDPOINT_PARAMETER = os.environ.get("ENDPOINT_PARAMETER", "/sls-observe/delivery/endpoint")
API_KEY_SECRET = os.environ.get("API_KEY_SECRET", "/sls-observe/delivery/api-key")
# Endpoint and key change only when someone redeploys or rotates them. Caching them for 5 minutes
# per execution environment keeps Parameter Store and Secrets Manager out of the hot path (under
# the retry storm hundreds of environments would otherwise call them on every order and hit their
# own throttles, e.g. SSM's 40 TPS default) and bounds staleness after a rotation to 5 minutes.
# (Powertools' default is 5 s; the seed left it there.)
PARAMETERS_MAX_AGE_SECONDS = int(os.environ.get("PARAMETERS_MAX_AGE_SECONDS", "300"))
# The seed called the courier with no timeout at all, so a hung courier held the environment
# until the 29 s function timeout. Connect: 3.05 s (just above the 3 s TCP SYN retransmission,
# so one lost SYN is survived). Read: 12 s, above the courier's slowest legitimate answer (10 s in
# the seed code's profile, 2 s in the seed README's) plus gateway overhead, so a slow success is
# not cut off and then delivered twice; yet well below the 29 s function timeout, so one hung
# call cannot eat the whole retry budget.
HTTP_TIMEOUT_SECONDS = (3.05, 12.0)

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# The default raise_on_entire_batch_failure=True: with BatchSize 1 a failed order is a function
# error, so Lambda's Errors metric shows delivery failures behind the queue too (as in the seed).
processor = BatchProcessor(event_type=EventType.SQS)
# One session per execution environment: warm invocations reuse the courier connection.
session = requests.Session()
# Circuit breaker around each courier call (issue #8), off unless CIRCUIT_BREAKER=on
# (`python -m resilience.breaker on`); its state is one DynamoDB item shared by every environment.
breaker = courier_breaker() if enabled_by_env() else None


def _before_attempt(state: RetryCallState) -> None:
    metrics.add_metric(name="DeliveryAttempts", unit=MetricUnit.Count, value=1)
    logger.info({"message": "trying API delivery", "attempt": state.attempt_number})


def _before_sleep(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else None
    logger.warning(
        {
            "message": "delivery attempt failed, retrying",
            "attempt": state.attempt_number,
            "wait_seconds": round(wait, 3) if wait is not None else None,
            "error": str(error),
        }
    )


# The seed's policy: up to 5 attempts, 3 s + 0-5 s jitter between them, re-raise the last error.
# Only HTTP/transport errors are retried: nothing else in here can fail transiently.
@retry(
    wait=wait_fixed(3) + wait_random(0, 5),
    stop=stop_after_attempt(5),
    retry=retry_if_exception_type(requests.RequestException),
    reraise=True,
    before=_before_attempt,
    before_sleep=_before_sleep,
)
def try_api_delivery(
    endpoint: str, api_key: str, correlation_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    if breaker is not None:
        # each attempt is one breaker call; an open circuit raises CircuitBreakerError, which
        # tenacity does not retry, so the retry storm stops at the breaker
        return breaker.call(_courier_call, endpoint, api_key, correlation_id, body)
    return _courier_call(endpoint, api_key, correlation_id, body)


def _courier_call(
    endpoint: str, api_key: str, correlation_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    headers = {"x-api-key": api_key, "x-correlation-id": correlation_id}
    response = session.post(endpoint, json=body, headers=headers, timeout=HTTP_TIMEOUT_SECONDS)
    logger.info({"message": "courier answered", "status_code": response.status_code})
    if response.status_code == 429:
        metrics.add_metric(name="CourierThrottled", unit=MetricUnit.Count, value=1)
    response.raise_for_status()
    return response.json()


def acceptance_latency_ms(accepted_at: str | None, now: datetime | None = None) -> float | None:
    """Milliseconds from the notification's acceptance to now; None if the time is unusable."""
    if not accepted_at:
        return None
    try:
        accepted = datetime.fromisoformat(accepted_at)
    except ValueError:
        return None
    if accepted.tzinfo is None:
        accepted = accepted.replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - accepted).total_seconds() * 1000.0


def deliver(detail: dict[str, Any], parks: int = 0) -> dict[str, Any]:
    """Deliver one order (an event detail) to the courier; raise if it finally failed. `parks`:
    how often the circuit breaker parked this order already."""
    meta = detail.get("meta_data") or {}
    correlation_id = str(meta.get("correlation_id") or "undefined")
    logger.set_correlation_id(correlation_id)
    logger.append_keys(order_id=detail.get("order_id"))
    logger.info({"status": "START", "message": "Processing Delivery Notification"})
    body = {key: value for key, value in detail.items() if key != "meta_data"}
    try:
        endpoint = parameters.get_parameter(ENDPOINT_PARAMETER, max_age=PARAMETERS_MAX_AGE_SECONDS)
        api_key = parameters.get_secret(API_KEY_SECRET, max_age=PARAMETERS_MAX_AGE_SECONDS)
        courier_answer = try_api_delivery(endpoint, api_key, correlation_id, body)
    except CircuitBreakerError as error:
        return park(detail, error, parks)
    except requests.RequestException as error:
        status = error.response.status_code if error.response is not None else None
        metrics.add_metric(name="DeliveryFailed", unit=MetricUnit.Count, value=1)
        logger.error({"status": "FAILED", "message": str(error), "status_code": status})
        raise
    except parameters.exceptions.GetParameterError as error:
        metrics.add_metric(name="DeliveryFailed", unit=MetricUnit.Count, value=1)
        logger.error({"status": "FAILED", "message": f"configuration unreadable: {error}"})
        raise
    metrics.add_metric(name="OrdersDelivered", unit=MetricUnit.Count, value=1)
    latency = acceptance_latency_ms(meta.get("accepted_at"))
    if latency is not None:
        metrics.add_metric(name="DeliveryLatency", unit=MetricUnit.Milliseconds, value=latency)
    logger.info(
        {
            "status": "COMPLETED",
            "message": "order delivered",
            "courier": courier_answer,
            "attempts": try_api_delivery.statistics.get("attempt_number"),
            "latency_ms": round(latency, 1) if latency is not None else None,
        }
    )
    return courier_answer


def park(detail: dict[str, Any], error: Exception, parks: int) -> dict[str, Any]:
    """The breaker's fallback: keep the order on the retry queue (an EventBridge-shaped envelope,
    so the redrive mapping brings it back through record_handler) instead of dropping it. The
    envelope counts the parks, so each one waits longer (lab_breaker.park_delay)."""
    import boto3

    envelope = {"source": "lab.circuit-breaker", "detail-type": "notify-order", "detail": detail,
                "parks": parks + 1}
    delay = park_delay(parks, breaker.settings.reset_timeout_s)
    message_id = park_order(boto3.client("sqs"), breaker.settings.retry_queue_url, envelope,
                            str(error), delay_seconds=delay)
    logger.warning({"status": "PARKED", "message": f"circuit open, order parked: {error}",
                    "retry_message_id": message_id, "parks": parks + 1, "delay_seconds": delay})
    return {"parked": True, "retry_message_id": message_id}


def record_handler(record: SQSRecord) -> dict[str, Any]:
    """One SQS message = one EventBridge event put on the queue by the rule, or an order the
    circuit breaker parked (its envelope also counts the parks)."""
    envelope = json.loads(record.body)
    return deliver(envelope["detail"], int(envelope.get("parks", 0)))


def is_sqs_batch(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    return bool(records) and all(r.get("eventSource") == "aws:sqs" for r in records)


@inject_faults
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_sqs_batch(event):
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    if isinstance(event.get("detail"), dict) and "detail-type" in event:
        return deliver(event["detail"])
    raise ValueError("unsupported event: expected an EventBridge event or an SQS batch")
