"""The names and shapes every topology shares: one emulated AWS account per topology.

Each topology is complete in its own account (functions, bus, APIs, its own courier with its own
key and usage plan, tables, parameters) so the two can run at the same time without sharing a
concurrency pool or a courier rate limit: on AWS they would be two accounts or two stacks.
"""

from __future__ import annotations

from lab_kernel import topologies as catalogue
from lab_kernel.topologies import API_DESTINATION, ASYNC_INVOKE, SQS_ESM, Topology

__all__ = ["API_DESTINATION", "ASYNC_INVOKE", "SQS_ESM", "TOPOLOGIES", "Topology"]

REGION = "us-east-1"
RUNTIME = "python3.13"
# The seed demo's Globals: Timeout 29 (API Gateway's integration limit), MemorySize 1024.
TIMEOUT_SECONDS = 29
MEMORY_MB = 1024

NOTIFICATION = "NotificationFunction"
DELIVERY = "DeliveryFunction"
COURIER = "SlowApiFunction"
# function name -> folder under lambdas/
FUNCTION_FOLDERS: dict[str, str] = {
    NOTIFICATION: "notification",
    DELIVERY: "delivery",
    COURIER: "slow_api",
}
# key used in .lab/endpoints.json -> function name
FUNCTION_ROLES: dict[str, str] = {"notification": NOTIFICATION, "delivery": DELIVERY, "courier": COURIER}

EVENT_BUS = "sls-observe-events"
RULE = "sls-observe-notify-order"
DETAIL_TYPE = "notify-order"
NOTIFY_API = "sls-observe-notify"
COURIER_API = "sls-observe-courier"
STAGE = "Prod"
API_KEY = "sls-observe-courier-key"
USAGE_PLAN = "sls-observe-courier-plan"
# The seed's usage plan: BurstLimit 10, RateLimit 10 (enforced by the lab's platform plugin).
COURIER_RATE_LIMIT = 10.0
COURIER_BURST_LIMIT = 10
ENDPOINT_PARAMETER = "/sls-observe/delivery/endpoint"
API_KEY_SECRET = "/sls-observe/delivery/api-key"
DELIVERIES_TABLE = "CourierDeliveries"

ON_FAILURE_QUEUE = "sls-observe-delivery-failures"
DELIVERY_QUEUE = "sls-observe-delivery"
DLQ = "sls-observe-delivery-dlq"
# The seed's queue: VisibilityTimeout 150 s, over 5x the 29 s function timeout, so a message is
# not handed to a second environment while the first is still retrying it.
QUEUE_VISIBILITY_TIMEOUT = 150
# maxReceiveCount 5: AWS's guidance for queues behind a Lambda event source mapping is at least 5,
# because receives that end in a throttle also count. Each receive already means up to 5 tenacity
# attempts, so an order reaches the DLQ after up to 25 courier calls over about 5 x 150 s: long
# enough to ride out a courier blip, short enough that a poison order parks within ~13 minutes.
MAX_RECEIVE_COUNT = 5
ESM_BATCH_SIZE = 1
ESM_MAX_CONCURRENCY = 10
# What the resilience tools create or read at run time (resilience/breaker.py, lab_faults): the
# functions' roles grant them up front, so turning a tool on needs no IAM change on real AWS.
BREAKER_TABLE = "lab-circuit-breaker"
BREAKER_RETRY_QUEUE = "lab-delivery-retry"
# Visibility above the function timeout (29 s) with margin, like the delivery queue's 150 s.
BREAKER_RETRY_VISIBILITY_TIMEOUT = 150
# The retry queue's mapping is capped like the flow-control queue's: uncapped, Lambda scales it by
# 300 a minute while parked orders wait (AWS's SQS scaling), towards the account's limit, so the
# fix's own queue throttled the shop's webhook (catalogue smoke run: delivery at 400, the limit).
BREAKER_RETRY_MAX_CONCURRENCY = ESM_MAX_CONCURRENCY
FAULTS_PARAMETER_PREFIX = "/lab/faults/"
# The API-destination wiring: the bus calls the courier itself through an EventBridge API
# destination paced at the courier's own rate (its usage plan's 10 requests/s), with the key sent
# by a connection, the order (the event's detail) as the body, and AWS's default retry policy (24 h,
# 185 retries); events that run out go to the DLQ.
COURIER_CONNECTION = "sls-observe-courier-connection"
COURIER_DESTINATION = "sls-observe-courier-destination"
COURIER_DESTINATION_RATE = int(COURIER_RATE_LIMIT)
EVENTS_ROLE = "sls-observe-events-role"
# Asynchronous invocation defaults made explicit: 2 retries, events kept up to 6 hours.
ASYNC_MAX_RETRIES = 2
ASYNC_MAX_EVENT_AGE = 21600


# every topology of lab_kernel/topologies.toml, in its order
TOPOLOGIES: tuple[Topology, ...] = catalogue.catalogue().topologies


def chosen() -> tuple[Topology, ...]:
    """The topologies `$TOPOLOGIES` chooses (unset: the comparison pair), what `make up` provisions."""
    return tuple(catalogue.get(name) for name in catalogue.selected())


def log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def api_url(localstack_url: str, api_id: str, path: str) -> str:
    """LocalStack's path form of an API URL: the execute-api host form needs DNS we lack, and the
    older `/restapis/{id}/{stage}/_user_request_/` form logs a deprecation warning per request."""
    return f"{localstack_url.rstrip('/')}/_aws/execute-api/{api_id}/{STAGE}/{path.lstrip('/')}"
