"""EventBridge API destinations send at their rate limit, retry as EventBridge does, dead-letter.

AWS (EventBridge user guide: "API destinations as targets", "How EventBridge retries delivering
events", "Using dead-letter queues"): a rule target that is an API destination receives at most
`InvocationRateLimitPerSecond` requests a second; events beyond the rate wait their turn. A request
answered 401, 407, 409, 429 or 5xx, or not answered within 5 s, is retried with exponential
back-off and jitter within the target's `RetryPolicy` (default 24 h, 185 retries); an event that
runs out goes to the target's `DeadLetterConfig` queue with the attributes RULE_ARN, TARGET_ARN,
ERROR_CODE, ERROR_MESSAGE, EXHAUSTED_RETRY_CONDITION and RETRY_ATTEMPTS. PutEvents never waits
for a target.
LocalStack 4.14: `EventsApiDestinationTargetSender.send_event` sends the request on the thread
matching the rules, at once: the rate limit is stored and never applied, there is no timeout, no
retry ("TODO: retry logic") and no dead-letter queue. A courier behind a 10 req/s usage plan
therefore sees every event the moment it matches, and one that fails is gone.
Here: the request is built as LocalStack builds it (its headers, the connection's authorization,
the target's HTTP parameters), then waits on its destination's schedule (`schedule.py`: token
bucket at the destination's rate, retry decisions). One dispatcher thread per destination hands
due requests to a worker pool; answers decide retry, success or dead letter. DescribeApiDestination
is read at most every `DESCRIBE_TTL_SECONDS` per destination (a changed rate applies then), and so
is the connection's authorization: LocalStack's `add_api_destination_authorization` calls
DescribeConnection and GetSecretValue for every event (AWS caches a connection's credentials, and an
OAuth token until it expires); here it runs once per read, into headers, body parameters and
endpoint that every event then takes. Measured (`benchmarks.order_cost --topology api-destination`,
steady 5 orders/s, 2 cores, old and new code in turns, twice): requests per order events 2.02 ->
1.04, secretsmanager 1.00 -> 0.02; the rules thread 10.1-10.9 -> 6.5-6.9 ms of CPU per order;
LocalStack 39.7-43.2 -> 34.3-37.9 ms per order.
Measured (tests/integration/test_platform_api_destination.py, 2 cores, host mode): 40 events put
at once reach a recorder API at 9.9-10.1 requests/s (3 runs; busiest second 11, the API's own
latency jitter) with a limit of 10; 5 events answered 502 for 3 s are all delivered after 15-19
retries; a 400 reaches the DLQ after one call. With the patch off, LocalStack's own sender put
the 40 through at 77.8 requests/s (all within one second), and the other two never happened.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import requests
from localstack.aws.connect import connect_to
from localstack.services.events.api_destination import add_api_destination_authorization
from localstack.services.events.target import TRACE_HEADER_KEY, EventsApiDestinationTargetSender
from localstack.utils.aws.arns import extract_account_id_from_arn, extract_region_from_arn, sqs_queue_url_for_arn
from localstack.utils.aws.message_forwarding import add_target_http_parameters
from localstack.utils.patch import Patches

from lab_platform.api_destination.schedule import (
    REQUEST_TIMEOUT_SECONDS,
    Delivery,
    DestinationSchedule,
    RetryPolicy,
    Verdict,
)
from lab_platform.metrics import registry as m
from lab_platform.metrics.events_hooks import rule_labels
from lab_platform.workers import ElasticPool

LOG = logging.getLogger(__name__)

# AWS's default InvocationRateLimitPerSecond when a destination states none.
DEFAULT_RATE = 300.0
DESCRIBE_TTL_SECONDS = 10.0
# In-flight requests across destinations: a 5 s timeout at a destination's rate of 10 is 50.
SENDER_WORKERS = 64
# The headers EventBridge sends with every API destination request (LocalStack's list).
BASE_HEADERS = {
    "User-Agent": "Amazon/EventBridge/ApiDestinations",
    "Content-Type": "application/json; charset=utf-8",
    "Range": "bytes=0-1048575",
    "Accept-Encoding": "gzip,deflate",
}


class _Request:
    """What one event sends, and where it ends if it cannot be sent."""

    __slots__ = ("method", "url", "body", "headers", "target", "rule_arn")

    def __init__(self, method: str, url: str, body: str, headers: dict[str, str], target: dict[str, Any],
                 rule_arn: str) -> None:
        self.method, self.url, self.body, self.headers = method, url, body, headers
        self.target, self.rule_arn = target, rule_arn


class _Authorization:
    """What the connection adds to every request: headers, body parameters, the endpoint."""

    __slots__ = ("endpoint", "headers", "body")

    def __init__(self, endpoint: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        self.endpoint, self.headers, self.body = endpoint, headers, body

    @classmethod
    def of(cls, described: dict[str, Any]) -> _Authorization:
        # LocalStack's own function, run once on an empty event: what it adds to the event are
        # the connection's body parameters, the same for every event
        headers: dict[str, str] = {}
        body: dict[str, Any] = {}
        endpoint = add_api_destination_authorization(described, headers, body)
        return cls(endpoint, headers, body)


class _Destination:
    """One API destination's schedule and the thread that sends what is due."""

    def __init__(self, arn: str, rate: float, pool: ElasticPool) -> None:
        self.arn = arn
        self.schedule = DestinationSchedule(rate)
        self.pool = pool
        self.wake = threading.Condition()
        self.described: dict[str, Any] = {}
        self.described_at = float("-inf")
        self.authorization = _Authorization("", {}, {})
        self.thread = threading.Thread(target=self._run, name=f"lab-api-destination-{arn.rsplit('/', 2)[-2]}",
                                       daemon=True)
        self.thread.start()

    def add(self, request: _Request) -> None:
        self.schedule.add(request)
        with self.wake:
            self.wake.notify()

    def _run(self) -> None:
        while True:
            with self.wake:
                self.wake.wait(timeout=self.schedule.wait())
            for delivery in self.schedule.take():
                self.pool.submit(self._send, delivery)

    def _send(self, delivery: Delivery) -> None:
        request: _Request = delivery.payload
        status: int | None = None
        error = ""
        try:
            answer = requests.request(request.method, request.url, data=request.body, headers=request.headers,
                                      timeout=REQUEST_TIMEOUT_SECONDS)
            status = answer.status_code
            error = f"HTTP {status}"
        except requests.RequestException as exc:
            error = f"no answer within {REQUEST_TIMEOUT_SECONDS:.0f} s: {type(exc).__name__}"
        verdict = self.schedule.answered(delivery, status, RetryPolicy.of_target(request.target))
        labels = rule_labels(request.rule_arn)
        if verdict.retry_at is not None:
            m.events_retry_invocation_attempts.labels(**labels).inc()
            with self.wake:
                self.wake.notify()
        elif verdict.dead:
            LOG.info("API destination %s: event dead after %d retries (%s, %s)", self.arn, delivery.retries,
                     error, verdict.reason)
            _dead_letter(request, delivery, status, error, verdict, labels)


def _dead_letter(request: _Request, delivery: Delivery, status: int | None, error: str, verdict: Verdict,
                 labels: dict[str, str]) -> None:
    dlq = (request.target.get("DeadLetterConfig") or {}).get("Arn")
    if not dlq:
        return  # AWS drops it
    attributes = {
        "RULE_ARN": request.rule_arn,
        "TARGET_ARN": request.target["Arn"],
        "ERROR_CODE": f"HTTP_{status}" if status is not None else "TIMEOUT",
        "ERROR_MESSAGE": f"{error}; {verdict.reason}",
        "RETRY_ATTEMPTS": str(delivery.retries),
    }
    if verdict.exhausted:
        attributes["EXHAUSTED_RETRY_CONDITION"] = verdict.exhausted
    try:
        sqs = connect_to(aws_access_key_id=extract_account_id_from_arn(dlq),
                         region_name=extract_region_from_arn(dlq)).sqs
        sqs.send_message(
            QueueUrl=sqs_queue_url_for_arn(dlq), MessageBody=request.body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        )
        m.events_sent_to_dlq.labels(**labels).inc()
    except Exception:  # noqa: BLE001 - AWS counts InvocationsFailedToBeSentToDlq and goes on
        LOG.exception("API destination %s: the dead-letter queue %s refused the event", request.target["Arn"], dlq)


_lock = threading.Lock()
_destinations: dict[str, _Destination] = {}
_pool: ElasticPool | None = None


def _destination(arn: str, rate: float) -> _Destination:
    global _pool
    with _lock:
        destination = _destinations.get(arn)
        if destination is None:
            _pool = _pool or ElasticPool(SENDER_WORKERS, name="lab-api-destination-send")
            destination = _destinations[arn] = _Destination(arn, rate, _pool)
        return destination


def _describe(sender: EventsApiDestinationTargetSender) -> tuple[dict[str, Any], _Destination]:
    arn = sender.target["Arn"]
    existing = _destinations.get(arn)
    if existing is not None and time.monotonic() - existing.described_at < DESCRIBE_TTL_SECONDS:
        return existing.described, existing
    events = connect_to(aws_access_key_id=extract_account_id_from_arn(arn),
                        region_name=extract_region_from_arn(arn)).events
    described = events.describe_api_destination(Name=destination_name(arn))
    rate = float(described.get("InvocationRateLimitPerSecond") or DEFAULT_RATE)
    destination = existing or _destination(arn, rate)
    destination.schedule.set_rate(rate)
    destination.authorization = _Authorization.of(described)
    destination.described, destination.described_at = described, time.monotonic()
    return described, destination


def _send_event(fn, self: EventsApiDestinationTargetSender, event, trace_header) -> None:
    described, destination = _describe(self)
    authorization = destination.authorization
    headers = {**BASE_HEADERS, **authorization.headers}
    endpoint = authorization.endpoint
    if authorization.body and isinstance(event, dict):
        event.update(authorization.body)
    if http_parameters := self.target.get("HttpParameters"):
        endpoint = add_target_http_parameters(http_parameters, endpoint, headers, event)
    headers[TRACE_HEADER_KEY] = trace_header.to_header_str()
    destination.add(_Request(described.get("HttpMethod", "GET"), endpoint, json.dumps(event or {}), headers,
                             self.target, self.rule_arn))


def destination_name(arn: str) -> str:
    """arn:aws:events:region:account:api-destination/name/uuid -> name."""
    return arn.split(":")[-1].split("/")[1]


def backlog() -> dict[str, int]:
    """Events not yet delivered or dead-lettered per API destination ARN: waiting at the rate
    limit, between retries, or being sent (the metrics' backlog gauge, tests, diagnostics)."""
    with _lock:
        return {arn: d.schedule.undecided() for arn, d in _destinations.items()}


def patches() -> Patches:
    p = Patches()
    p.function(EventsApiDestinationTargetSender.send_event, _send_event)
    return p
