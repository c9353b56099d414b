"""NotificationFunction: the shop's order webhook (`POST /notify`) in front of the event bus.

It accepts a JSON object with a non-empty string `order_id` (plus whatever else the shop sends),
stamps it with a correlation_id (the API Gateway request id, so one id follows the order through
every log) and the acceptance time, and puts one `notify-order` event on the topology's bus.
Malformed requests are refused with a 400 that says why and never reach the bus, so the
downstream never has to defend itself against them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from lab_faults import inject_faults

SERVICE = "notify-handler"
NAMESPACE = "ServerlessBoundaryLab"
DETAIL_TYPE = "notify-order"
# An order notification is well under 1 KiB. 16 KiB leaves room for rich orders while staying
# far below EventBridge's 256 KiB entry limit (and SQS's 256 KiB message limit on the
# queued (sqs-esm) path, where the event envelope is added around it), so an accepted order can
# never be rejected later by a size limit downstream.
DEFAULT_MAX_BODY_BYTES = 16 * 1024

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
events = boto3.client("events")


class InvalidOrder(ValueError):
    """The request is not an order we accept; the message is the reason given to the caller."""


def max_body_bytes() -> int:
    return int(os.environ.get("ORDER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


def parse_order(body: str | None, is_base64: bool, limit: int) -> dict[str, Any]:
    """Return the order as a dict, or raise InvalidOrder saying exactly what is wrong."""
    if body is None or body == "":
        raise InvalidOrder("request body is empty: send a JSON object with an order_id")
    raw: bytes
    if is_base64:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidOrder("request body is not valid base64") from None
    else:
        raw = body.encode("utf-8")
    if len(raw) > limit:
        raise InvalidOrder(f"request body is {len(raw)} bytes; the limit is {limit} bytes")
    try:
        # API Gateway hands over a body that is not UTF-8 base64-encoded; JSON must be UTF-8
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidOrder(f"request body is not valid UTF-8: byte 0x{raw[error.start]:02x} at "
                           f"offset {error.start}; send the order as UTF-8 JSON") from None
    try:
        order = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidOrder(f"request body is not JSON: {error}") from None
    if not isinstance(order, dict):
        raise InvalidOrder(f"request body must be a JSON object, got {type(order).__name__}")
    if "order_id" not in order:
        raise InvalidOrder("order_id is missing")
    order_id = order["order_id"]
    if not isinstance(order_id, str):
        raise InvalidOrder(f"order_id must be a string, got {type(order_id).__name__}")
    if not order_id.strip():
        raise InvalidOrder("order_id is empty")
    return order


def json_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


class EventBusRejected(RuntimeError):
    """PutEvents answered but did not take the order: the caller must see a 5xx and retry."""


# failure injection (issue #8): off unless /lab/faults/<FunctionName> says otherwise
@inject_faults
# clear_state: keys appended for one order (order_id) must not leak into the next invocation
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@metrics.log_metrics
@event_source(data_class=APIGatewayProxyEvent)
def handler(event: APIGatewayProxyEvent, context: LambdaContext) -> dict[str, Any]:
    correlation_id = event.request_context.request_id
    logger.info({"status": "START", "message": "Processing Order Notification"})
    try:
        order = parse_order(event.body, event.is_base64_encoded, max_body_bytes())
    except InvalidOrder as invalid:
        logger.warning({"status": "FAILED", "message": "order rejected", "reason": str(invalid)})
        return json_response(
            400, {"error": "invalid order", "reason": str(invalid), "correlation_id": correlation_id}
        )

    if "meta_data" in order:
        # meta_data is the pipeline's envelope (delivery strips it before the courier sees the
        # order), so a value sent by the shop would be lost anyway: say so in the log.
        logger.warning({"message": "client meta_data replaced by the pipeline's own"})
    accepted_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    order["meta_data"] = {"correlation_id": correlation_id, "accepted_at": accepted_at}
    logger.append_keys(order_id=order["order_id"])

    try:
        response = events.put_events(
            Entries=[
                {
                    "Source": context.function_name,
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(order),
                    "Resources": [context.invoked_function_arn],
                    "EventBusName": os.environ["EVENTBUS_NAME"],
                }
            ]
        )
    except (BotoCoreError, ClientError) as error:
        # the story must end in FAILED, not in a bare traceback; then fail loudly (5xx)
        logger.error({"status": "FAILED", "message": f"event bus unreachable: {error}"})
        raise
    if response.get("FailedEntryCount", 0) > 0:
        failed = [e for e in response.get("Entries", []) if "ErrorCode" in e]
        logger.error({"status": "FAILED", "message": "event bus rejected the order", "entries": failed})
        # Fail loudly: a function error is counted in Lambda's Errors metric and the shop gets
        # a 5xx it will retry, instead of a 200 for an order that went nowhere.
        raise EventBusRejected(f"PutEvents failed for the order: {failed}")

    metrics.add_metric(name="OrdersAccepted", unit=MetricUnit.Count, value=1)
    event_id = response["Entries"][0].get("EventId")
    logger.info({"status": "COMPLETED", "message": "order put on the event bus", "event_id": event_id})
    return json_response(
        200, {"correlation_id": correlation_id, "event_id": event_id, "accepted_at": accepted_at}
    )
