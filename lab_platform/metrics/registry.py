"""The metric families of docs/METRICS.md, in one registry of their own.

A dedicated registry (not prometheus_client's global one) keeps LocalStack's process internals and
any other library's metrics out of `/_lab/metrics`: the page carries exactly the contract.
Live gauges (concurrency, SQS depths) are read at scrape time by collectors registered by
`lab_platform.metrics.collectors`, so they are never stale.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

# `*_created` series are not part of the contract (CloudWatch has no such thing).
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)

_LAMBDA = ("account", "region", "function_name")
_APIGW = ("account", "region", "api_name", "api_id", "stage", "resource", "method")
_EVENTS = ("account", "region", "event_bus", "rule")

# Lambda durations run from a few ms to the 900 s maximum timeout.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 900)
# API Gateway answers within its 29 s integration timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 29)
# Async events may wait up to the 6 h maximum event age.
EVENT_AGE_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 21600)

lambda_invocations = Counter(
    "lab_lambda_invocations", "Lambda Invocations", _LAMBDA, registry=REGISTRY
)
lambda_errors = Counter(
    "lab_lambda_errors", "Lambda Errors (function errors and timeouts)", _LAMBDA, registry=REGISTRY
)
lambda_throttles = Counter("lab_lambda_throttles", "Lambda Throttles", _LAMBDA, registry=REGISTRY)
lambda_duration = Histogram(
    "lab_lambda_duration_seconds",
    "Lambda Duration",
    _LAMBDA,
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
async_received = Counter(
    "lab_lambda_async_events_received", "Lambda AsyncEventsReceived", _LAMBDA, registry=REGISTRY
)
async_retried = Counter(
    "lab_lambda_async_events_retried",
    "Asynchronous events put back for a retry (throttle, system or function error)",
    _LAMBDA,
    registry=REGISTRY,
)
async_dropped = Counter(
    "lab_lambda_async_events_dropped", "Lambda AsyncEventsDropped", _LAMBDA, registry=REGISTRY
)
async_event_age = Histogram(
    "lab_lambda_async_event_age_seconds",
    "Lambda AsyncEventAge: time from enqueue to the start of an invocation attempt",
    _LAMBDA,
    buckets=EVENT_AGE_BUCKETS,
    registry=REGISTRY,
)
destination_deliveries = Counter(
    "lab_lambda_destination_deliveries",
    "Lambda DestinationDeliveries (on_success, on_failure destinations and the DLQ)",
    (*_LAMBDA, "destination_type"),
    registry=REGISTRY,
)

apigateway_requests = Counter(
    "lab_apigateway_requests",
    "API Gateway Count, 4XXError and 5XXError",
    (*_APIGW, "status_class"),
    registry=REGISTRY,
)
apigateway_throttled = Counter(
    "lab_apigateway_throttled",
    "API Gateway 429 answers (throttle and quota)",
    _APIGW,
    registry=REGISTRY,
)
apigateway_latency = Histogram(
    "lab_apigateway_latency_seconds",
    "API Gateway Latency",
    _APIGW,
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)

events_matched = Counter(
    "lab_events_matched_events", "EventBridge MatchedEvents", _EVENTS, registry=REGISTRY
)
events_invocations = Counter(
    "lab_events_invocations", "EventBridge Invocations", _EVENTS, registry=REGISTRY
)
events_failed_invocations = Counter(
    "lab_events_failed_invocations", "EventBridge FailedInvocations", _EVENTS, registry=REGISTRY
)
events_retry_invocation_attempts = Counter(
    "lab_events_retry_invocation_attempts",
    "EventBridge RetryInvocationAttempts (API destination requests sent again)",
    _EVENTS,
    registry=REGISTRY,
)
events_sent_to_dlq = Counter(
    "lab_events_invocations_sent_to_dlq", "EventBridge InvocationsSentToDlq", _EVENTS, registry=REGISTRY
)


def status_class(status_code: int) -> str:
    """'2xx', '4xx', '5xx' (and '1xx'/'3xx' for completeness)."""
    return f"{max(1, min(5, status_code // 100))}xx"
