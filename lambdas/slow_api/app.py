"""SlowApiFunction: "Ace Courier", an unstable scheduling API behind a key and a usage plan.

Profiles (env `COURIER_PROFILE`):
- `seed` (default): the seed README's numbers, 20% of calls fail at once, the rest succeed
  after a uniform 0-2 s.
- `seed-code`: what the demo repository's code actually does, `randint(0, 100) > 80` fails
  (20/101) and successes take `randint(1, 10)` whole seconds.

Each accepted delivery is recorded in DynamoDB by correlation_id with a conditional write, so a
second delivery of the same order is counted (attribute `deliveries`) and logged instead of
passing unnoticed: duplicates are what retries on a slow courier produce.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext
from lab_faults import inject_faults

SERVICE = "slow-api"
NO_CORRELATION_ID = "not-supplied"

logger = Logger(service=SERVICE)
app = APIGatewayRestResolver()
# Few, quick retries: the ledger must not add seconds to the courier's answer.
dynamodb = boto3.client("dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 3}))
rng = random.Random()


@dataclass(frozen=True)
class Profile:
    name: str
    fails: Callable[[random.Random], bool]
    delay_seconds: Callable[[random.Random], float]


PROFILES: dict[str, Profile] = {
    "seed": Profile("seed", lambda r: r.random() < 0.2, lambda r: r.uniform(0.0, 2.0)),
    "seed-code": Profile(
        "seed-code", lambda r: r.randint(0, 100) > 80, lambda r: float(r.randint(1, 10))
    ),
}


def profile_from_env() -> Profile:
    name = os.environ.get("COURIER_PROFILE", "seed") or "seed"
    if name not in PROFILES:
        raise ValueError(f"COURIER_PROFILE={name!r} is unknown: use one of {sorted(PROFILES)}")
    return PROFILES[name]


PROFILE = profile_from_env()


class CourierFailure(RuntimeError):
    """The courier's planned random failure."""


def record_delivery(table: str, correlation_id: str, order_id: Any) -> int:
    """Record one accepted delivery; return how many times this correlation_id was delivered."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    try:
        dynamodb.put_item(
            TableName=table,
            Item={
                "correlation_id": {"S": correlation_id},
                "deliveries": {"N": "1"},
                "first_delivered_at": {"S": now},
                "order_id": {"S": str(order_id)},
            },
            ConditionExpression="attribute_not_exists(correlation_id)",
        )
        return 1
    except dynamodb.exceptions.ConditionalCheckFailedException:
        updated = dynamodb.update_item(
            TableName=table,
            Key={"correlation_id": {"S": correlation_id}},
            UpdateExpression="ADD deliveries :one SET last_delivered_at = :now",
            ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"S": now}},
            ReturnValues="UPDATED_NEW",
        )
        deliveries = int(updated["Attributes"]["deliveries"]["N"])
        logger.warning({"message": "duplicate delivery", "deliveries": deliveries})
        return deliveries


# After a ledger failure this environment skips the ledger for a while instead of paying the
# failing call (seconds of retries) on every delivery.
LEDGER_RETRY_AFTER_SECONDS = 60.0
_ledger_down_until = 0.0


def record_delivery_safely(correlation_id: str, order_id: Any) -> int | None:
    """record_delivery, but the ledger is the lab's bookkeeping, not the courier's job: an order
    the courier accepted stays accepted, and every gap in the ledger is logged as an error."""
    global _ledger_down_until
    if time.monotonic() < _ledger_down_until:
        logger.error({"message": "delivery ledger unavailable: delivery not recorded", "error": "skipped"})
        return None
    try:
        return record_delivery(os.environ["DELIVERIES_TABLE"], correlation_id, order_id)
    except (BotoCoreError, ClientError) as error:
        _ledger_down_until = time.monotonic() + LEDGER_RETRY_AFTER_SECONDS
        logger.error({"message": "delivery ledger unavailable: delivery not recorded", "error": str(error)})
        return None


def correlation_id_of(headers: dict[str, str], body: Any) -> str:
    """The caller's x-correlation-id header, else the order's own `meta_data.correlation_id`: an
    EventBridge API destination posts the event's detail and sends only static headers."""
    if header := headers.get("x-correlation-id"):
        return header
    meta = body.get("meta_data") if isinstance(body, dict) else None
    found = meta.get("correlation_id") if isinstance(meta, dict) else None
    return str(found) if found else NO_CORRELATION_ID


@app.post("/slow")
def slow_handler() -> dict[str, Any]:
    try:
        body = app.current_event.json_body if app.current_event.body else {}
    except ValueError:  # the courier does not validate orders; it reads order_id to log it
        body = {}
    correlation_id = correlation_id_of(app.current_event.headers, body)
    logger.set_correlation_id(correlation_id)
    order_id = body.get("order_id") if isinstance(body, dict) else None
    logger.append_keys(order_id=order_id, profile=PROFILE.name)
    logger.info({"status": "START", "message": "Slow processing..."})

    if PROFILE.fails(rng):
        logger.error({"status": "FAILED", "message": "random process failure"})
        # Raised, not answered: as in the seed, the planned failures are function errors
        # (Lambda's Errors metric shows the courier's ~20%) and API Gateway answers 502.
        raise CourierFailure("random process failure")

    delay = PROFILE.delay_seconds(rng)
    logger.info({"message": f"slow response, waiting {delay:.2f} seconds", "delay_seconds": delay})
    time.sleep(delay)

    deliveries: int | None = None
    if correlation_id == NO_CORRELATION_ID:
        logger.warning({"message": "no x-correlation-id: delivery not recorded"})
    else:
        deliveries = record_delivery_safely(correlation_id, order_id)
    logger.info({"status": "COMPLETED", "message": "processed", "deliveries": deliveries})
    return {"correlation_id": correlation_id, "message": "processed", "deliveries": deliveries}


# failure injection (issue #8): off unless /lab/faults/<FunctionName> says otherwise
@inject_faults
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
