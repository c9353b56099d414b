"""The dashboards' panels as data: what each shows, its PromQL, unit and thresholds.

Every query takes a topology selector `{sel}` (`topology="<name>"`), so the same panel
is drawn per topology and side by side. Names come from docs/METRICS.md and the bootstrap's
resource names (bootstrap/topology.py). `$__rate_interval` and `$__range` are Grafana's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lab_kernel import topologies as lab_topologies

# every topology of lab_kernel/topologies.toml, in its order
TOPOLOGIES = lab_topologies.names()
# the topologies whose delivery function is invoked asynchronously (Lambda's internal event queue)
ASYNC_TOPOLOGIES = tuple(t.name for t in lab_topologies.catalogue().topologies if t.wiring == lab_topologies.ASYNC_INVOKE)
# the topologies with a delivery function, and those whose bus calls the courier itself
DELIVERY_TOPOLOGIES = tuple(t.name for t in lab_topologies.catalogue().topologies if t.has_delivery_function)
DESTINATION_TOPOLOGIES = tuple(t.name for t in lab_topologies.catalogue().topologies if not t.has_delivery_function)
RATE = "$__rate_interval"

NOTIFICATION = "NotificationFunction"
DELIVERY = "DeliveryFunction"
COURIER_FUNCTION = "SlowApiFunction"
COURIER_API = "sls-observe-courier"

GREEN, ORANGE, RED = "green", "orange", "red"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    # (value, color) steps; the first value is None (the base colour)
    thresholds: tuple[tuple[float | None, str], ...]
    kind: str = "timeseries"  # or "stat"
    min: float | None = 0
    max: float | None = None
    topologies: tuple[str, ...] = TOPOLOGIES  # where the panel makes sense
    show_thresholds: bool = False  # draw threshold lines/areas on a time series
    width: int = 12
    extra: dict = field(default_factory=dict)

    def for_topology(self, topology: str) -> tuple[Query, ...]:
        return self.with_selector(f'topology="{topology}"')

    def with_selector(self, sel: str) -> tuple[Query, ...]:
        return tuple(Query(q.expr.replace("{sel}", sel), q.legend) for q in self.queries)


def _rate(metric: str, matchers: str = "", by: str = "") -> str:
    inner = f"{metric}{{{{sel}}{', ' + matchers if matchers else ''}}}"
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping}(rate({inner}[{RATE}]))"


def _zero_if_none(counter: str, base: str) -> str:
    """`counter`, or 0 for every series of `base` that has no counter series yet.

    A labelled counter only exists after its first increment: a function that never errored has
    no error series. Shown as 0 while the function runs, not "No data"; still no data (honestly)
    while nothing runs at all.
    """
    return f"({counter} or 0 * {base})"


def _quantile(q: float, bucket: str, matchers: str = "", by: str = "") -> str:
    grouping = f"le, {by}" if by else "le"
    inner = f"{bucket}{{{{sel}}{', ' + matchers if matchers else ''}}}"
    return f"histogram_quantile({q}, sum by ({grouping}) (rate({inner}[{RATE}])))"


def catalogue(account_limit: int) -> tuple[PanelSpec, ...]:
    courier = f'api_name="{COURIER_API}"'
    delivery = f'function_name="{DELIVERY}"'
    courier_all = _rate("lab_apigateway_requests_total", courier)
    delivery_inv = _rate("lab_lambda_invocations_total", delivery)
    delivery_err = _zero_if_none(_rate("lab_lambda_errors_total", delivery), delivery_inv)
    invocations_by_fn = _rate("lab_lambda_invocations_total", by="function_name")
    accepted = _rate("emf_orders_accepted_total")
    success_pct = ((None, RED), (50, ORANGE), (75, GREEN))
    return (
        PanelSpec(
            "courier-success", "Courier success %",
            "Share of courier (SlowAPI) calls answered 2xx at its API Gateway. About 80% by design "
            "(20% planned failures); lower means 429s from the 10 req/s usage plan.",
            "percent",
            (Query(f'100 * {_rate("lab_apigateway_requests_total", f"{courier}, status_class=\"2xx\"")}'
                   f" / {courier_all}", "2xx %"),),
            success_pct, min=0, max=100, show_thresholds=True,
        ),
        PanelSpec(
            "courier-429", "Courier answers: 429s and status classes",
            "Courier calls per second by status class, and the 429s of its usage plan "
            "(rate 10, burst 10).",
            "reqps",
            (
                Query(_zero_if_none(_rate("lab_apigateway_throttled_total", courier), courier_all),
                      "429/s"),
                Query(_rate("lab_apigateway_requests_total", courier, by="status_class"),
                      "{{status_class}}"),
            ),
            ((None, GREEN), (1, ORANGE), (5, RED)),
        ),
        PanelSpec(
            "delivery-success", "Delivery function success %",
            "100 x (1 - Errors / Invocations) of the DeliveryFunction: the article's 'Delivery "
            "Lambda Success' graph.",
            "percent",
            (Query(f"100 * (1 - {delivery_err} / {delivery_inv})", "success %"),),
            ((None, RED), (90, ORANGE), (98, GREEN)), min=0, max=100, show_thresholds=True,
            topologies=DELIVERY_TOPOLOGIES,
        ),
        PanelSpec(
            "actual-success", "Actual success rate: orders delivered / accepted",
            "Orders the courier accepted over orders the notify API accepted, in the dashboard's "
            "time range (EMF OrdersDelivered / OrdersAccepted): the article's 'actual success rate'. "
            "It counts completed deliveries: an order delivered again after a late failure counts "
            "twice, so a retry storm can push it past 100%; `make report` counts each order once.",
            "percent",
            (Query(f"100 * sum(increase(emf_orders_delivered_total{{{{sel}}}}[$__range])) / "
                   f"sum(increase(emf_orders_accepted_total{{{{sel}}}}[$__range]))", "delivered %"),),
            ((None, RED), (80, ORANGE), (95, GREEN)), kind="stat", min=0, max=100, width=6,
            topologies=DELIVERY_TOPOLOGIES,
        ),
        PanelSpec(
            "orders", "Orders accepted vs delivered",
            "Orders per second accepted by the notify API, delivered to the courier, and given up "
            "(EMF OrdersAccepted, OrdersDelivered, DeliveryFailed).",
            "suffix: orders/s",
            (
                Query(accepted, "accepted"),
                Query(_zero_if_none(_rate("emf_orders_delivered_total"), accepted), "delivered"),
                Query(_zero_if_none(_rate("emf_delivery_failed_total"), accepted), "failed"),
            ),
            ((None, GREEN),), width=18, topologies=DELIVERY_TOPOLOGIES,
        ),
        PanelSpec(
            "destination", "API destination: requests, retries, dead letters",
            "Without a delivery function the bus calls the courier itself, paced at the API "
            "destination's InvocationRateLimitPerSecond: orders accepted, courier 2xx (deliveries), "
            "requests sent again after a 429, a 5xx or no answer (RetryInvocationAttempts) and "
            "events sent to the DLQ after the retry policy ran out (InvocationsSentToDlq).",
            "reqps",
            (
                Query(accepted, "accepted"),
                Query(_zero_if_none(_rate("lab_apigateway_requests_total", f'{courier}, status_class="2xx"'),
                                    accepted), "courier 2xx"),
                Query(_zero_if_none(_rate("lab_events_retry_invocation_attempts_total"), accepted), "retried"),
                Query(_zero_if_none(_rate("lab_events_invocations_sent_to_dlq_total"), accepted), "dead-lettered"),
            ),
            ((None, GREEN),), width=18, topologies=DESTINATION_TOPOLOGIES,
        ),
        PanelSpec(
            "destination-backlog", "API destination: events held",
            "Events the API destination holds and has not delivered or dead-lettered: waiting for "
            "the rate limit, waiting out a retry's back-off, or being sent. It grows while orders "
            "arrive faster than InvocationRateLimitPerSecond and falls back to 0 once every event "
            "is answered (AWS publishes no such metric; the lab's drain waits for it).",
            "short",
            (Query("sum by (api_destination) (lab_events_api_destination_backlog{{sel}})",
                   "{{api_destination}}"),),
            ((None, GREEN), (100, ORANGE), (1000, RED)), width=12, topologies=DESTINATION_TOPOLOGIES,
        ),
        PanelSpec(
            "account-concurrency", "Account concurrency vs limit",
            "ConcurrentExecutions of the whole account against its limit (the article's graph "
            "peaked at 788 of 1,000).",
            "short",
            (
                Query("sum(lab_lambda_account_concurrent_executions{{sel}})", "account concurrency"),
                Query("max(lab_lambda_account_concurrency_limit{{sel}})", "limit"),
            ),
            ((None, GREEN), (round(0.5 * account_limit), ORANGE), (round(0.8 * account_limit), RED)),
            show_thresholds=True,
        ),
        PanelSpec(
            "function-concurrency", "Concurrency per function",
            "ConcurrentExecutions per function. With flow control the delivery function stays at "
            "the event source mapping's maximum concurrency (10).",
            "short",
            (Query("sum by (function_name) (lab_lambda_concurrent_executions{{sel}})",
                   "{{function_name}}"),),
            ((None, GREEN), (10, ORANGE), (100, RED)),
        ),
        PanelSpec(
            "invocations", "Invocations per function",
            "Lambda Invocations per second, per function.", "reqps",
            (Query(invocations_by_fn, "{{function_name}}"),),
            ((None, GREEN),),
        ),
        PanelSpec(
            "errors", "Errors per function",
            "Lambda Errors (function errors and timeouts) per second, per function.", "reqps",
            (Query(_zero_if_none(_rate("lab_lambda_errors_total", by="function_name"),
                                 invocations_by_fn), "{{function_name}}"),),
            ((None, GREEN), (0.5, ORANGE), (2, RED)),
        ),
        PanelSpec(
            "throttles", "Throttles per function",
            "Lambda Throttles per second, per function (account or reserved concurrency "
            "exhausted).", "reqps",
            (Query(_zero_if_none(_rate("lab_lambda_throttles_total", by="function_name"),
                                 invocations_by_fn), "{{function_name}}"),),
            ((None, GREEN), (0.1, ORANGE), (1, RED)),
        ),
        PanelSpec(
            "duration", "Duration p50 / p95 per function",
            "Lambda Duration percentiles. Delivery grows with tenacity's 3-8 s waits between "
            "courier retries.", "s",
            (
                Query(_quantile(0.5, "lab_lambda_duration_seconds_bucket", by="function_name"),
                      "p50 {{function_name}}"),
                Query(_quantile(0.95, "lab_lambda_duration_seconds_bucket", by="function_name"),
                      "p95 {{function_name}}"),
            ),
            ((None, GREEN), (10, ORANGE), (25, RED)),  # the functions time out at 29 s
        ),
        PanelSpec(
            "queue-depth", "Queue depth",
            "SQS messages visible and in flight per queue: the delivery queue and its DLQ "
            "(sqs-esm wiring), the on-failure destination (async-invoke wiring).", "short",
            (
                Query("sum by (queue_name) (lab_sqs_messages_visible{{sel}})",
                      "visible {{queue_name}}"),
                Query("sum by (queue_name) (lab_sqs_messages_not_visible{{sel}})",
                      "in flight {{queue_name}}"),
            ),
            ((None, GREEN), (100, ORANGE), (1000, RED)),
        ),
        PanelSpec(
            "queue-age", "Oldest message age",
            "SQS ApproximateAgeOfOldestMessage per queue.", "s",
            (Query("max by (queue_name) (lab_sqs_oldest_message_age_seconds{{sel}})",
                   "{{queue_name}}"),),
            ((None, GREEN), (60, ORANGE), (300, RED)),
        ),
        PanelSpec(
            "async-queue", "Asynchronous event queue (EventBridge -> delivery)",
            "Without flow control the delivery function's queue is Lambda's internal async "
            "queue: events received, retried and dropped per second, and the p95 age of an event "
            "when its attempt starts (AsyncEventAge, right axis).", "reqps",
            (
                Query(_rate("lab_lambda_async_events_received_total", delivery), "received/s"),
                Query(_zero_if_none(_rate("lab_lambda_async_events_retried_total", delivery),
                                    _rate("lab_lambda_async_events_received_total", delivery)),
                      "retried/s"),
                Query(_zero_if_none(_rate("lab_lambda_async_events_dropped_total", delivery),
                                    _rate("lab_lambda_async_events_received_total", delivery)),
                      "dropped/s"),
                Query(_quantile(0.95, "lab_lambda_async_event_age_seconds_bucket", delivery),
                      "event age p95"),
            ),
            ((None, GREEN), (1, ORANGE), (5, RED)),
            topologies=ASYNC_TOPOLOGIES,
            extra={"right_axis_seconds": "event age p95"},
        ),
        PanelSpec(
            "delivery-latency", "Delivery latency p50 / p95",
            "From acceptance by the notify API to the courier's 2xx (EMF DeliveryLatency).", "s",
            (
                Query(_quantile(0.5, "emf_delivery_latency_seconds_bucket"), "p50"),
                Query(_quantile(0.95, "emf_delivery_latency_seconds_bucket"), "p95"),
            ),
            ((None, GREEN), (10, ORANGE), (60, RED)),
        ),
        PanelSpec(
            "circuit-breaker", "Circuit breaker transitions",
            "CLOSED / OPEN / HALF_OPEN transitions of the delivery function's circuit breaker per "
            "minute (EMF CircuitStateChange by state; `make chaos` or `python -m resilience.breaker "
            "on` to see it move). 0 while the breaker is off or steady.", "short",
            (Query(_zero_if_none(
                "sum by (state) (increase(emf_circuit_state_change_total{{sel}}[1m]))",
                delivery_inv), "{{state}}"),),
            ((None, GREEN), (1, ORANGE), (3, RED)),
            topologies=DELIVERY_TOPOLOGIES,
        ),
        PanelSpec(
            "faults-injected", "Faults injected",
            "Faults injected on purpose per second, by mode (EMF FaultInjected): tells an "
            "experiment's failures from real ones. 0 while no fault is on.", "reqps",
            (Query(_zero_if_none(_rate("emf_fault_injected_total", by="mode"), invocations_by_fn),
                   "{{mode}}"),),
            ((None, GREEN), (0.1, ORANGE)),
        ),
        PanelSpec(
            "locust", "Locust: requests/s, failures/s and target",
            "What the load generator did to the notify API: the profile's target arrival rate, "
            "requests started (held at the target whatever the response time), requests "
            "finished, and failures (non-2xx or no answer within 30 s).",
            "reqps",
            (
                Query("sum(locust_target_rps{{sel}})", "target"),
                Query(_rate("locust_requests_sent_total"), "sent/s"),
                Query(_rate("locust_requests_total"), "finished/s"),
                Query(_rate("locust_request_failures_total"), "failed/s"),
            ),
            ((None, GREEN),),
        ),
    )


# The "any app" dashboard (issue #18): every function, API and queue of one account, whatever
# made them (the bootstrap, `sam deploy`, `aws cloudformation deploy`). Its queries take the
# dashboard's own variables, which Grafana fills from the series Prometheus has, so a stack
# deployed after the dashboard was generated shows up without a change here.
APP_SELECTOR = 'account="$account"'
APP_VARIABLES = {
    # name: (label_values query, multi-value with "All")
    "account": ("label_values(lab_lambda_account_concurrency_limit, account)", False),
    "function": ('label_values(lab_lambda_invocations_total{account="$account"}, function_name)', True),
    "api": ('label_values(lab_apigateway_requests_total{account="$account"}, api_name)', True),
}


def app_catalogue() -> tuple[PanelSpec, ...]:
    fn = 'function_name=~"$function"'
    api = 'api_name=~"$api"'
    invocations = _rate("lab_lambda_invocations_total", fn, by="function_name")
    api_requests = _rate("lab_apigateway_requests_total", api, by="api_name")
    received = _rate("lab_lambda_async_events_received_total", fn, by="function_name")
    return (
        PanelSpec(
            "app-account-concurrency", "Account concurrency vs limit",
            "ConcurrentExecutions of the whole account against its limit: every function of the "
            "account shares it (a throttled account throttles them all).", "short",
            (
                Query("sum(lab_lambda_account_concurrent_executions{{sel}})", "account concurrency"),
                Query("max(lab_lambda_account_concurrency_limit{{sel}})", "limit"),
            ),
            ((None, GREEN),), show_thresholds=False,
        ),
        PanelSpec(
            "app-function-concurrency", "Concurrency per function",
            "ConcurrentExecutions per function: an SQS mapping's maximum concurrency or a "
            "reserved concurrency shows as a flat top.", "short",
            (Query(f"sum by (function_name) (lab_lambda_concurrent_executions{{{{sel}}, {fn}}})",
                   "{{function_name}}"),),
            ((None, GREEN),),
        ),
        PanelSpec(
            "app-invocations", "Invocations per function", "Lambda Invocations per second.", "reqps",
            (Query(invocations, "{{function_name}}"),), ((None, GREEN),),
        ),
        PanelSpec(
            "app-errors", "Errors per function",
            "Lambda Errors (function errors and timeouts) per second.", "reqps",
            (Query(_zero_if_none(_rate("lab_lambda_errors_total", fn, by="function_name"), invocations),
                   "{{function_name}}"),),
            ((None, GREEN), (0.5, ORANGE), (2, RED)),
        ),
        PanelSpec(
            "app-throttles", "Throttles per function",
            "Lambda Throttles per second: the account limit or the function's reserved "
            "concurrency reached.", "reqps",
            (Query(_zero_if_none(_rate("lab_lambda_throttles_total", fn, by="function_name"), invocations),
                   "{{function_name}}"),),
            ((None, GREEN), (0.1, ORANGE), (1, RED)),
        ),
        PanelSpec(
            "app-duration", "Duration p95 per function", "Lambda Duration, 95th percentile.", "s",
            (Query(_quantile(0.95, "lab_lambda_duration_seconds_bucket", fn, by="function_name"),
                   "{{function_name}}"),),
            ((None, GREEN), (10, ORANGE), (25, RED)),
        ),
        PanelSpec(
            "app-async", "Asynchronous invocations: received, retried, dropped",
            "Lambda's internal event queue per function (invoked by EventBridge, SNS, S3 or "
            "InvocationType Event): events received, retried after a throttle or an error, and "
            "dropped (retries or event age exhausted).", "reqps",
            (
                Query(received, "received {{function_name}}"),
                Query(_zero_if_none(_rate("lab_lambda_async_events_retried_total", fn, by="function_name"),
                                    received), "retried {{function_name}}"),
                Query(_zero_if_none(_rate("lab_lambda_async_events_dropped_total", fn, by="function_name"),
                                    received), "dropped {{function_name}}"),
            ),
            ((None, GREEN), (1, ORANGE), (5, RED)),
        ),
        PanelSpec(
            "app-destinations", "Destination deliveries",
            "Events sent to a function's on-success or on-failure destination or its dead-letter "
            "queue, per minute (DestinationDeliveries).", "short",
            (Query(_zero_if_none(
                f"sum by (function_name, destination_type) "
                f"(increase(lab_lambda_destination_deliveries_total{{{{sel}}, {fn}}}[1m]))",
                f"sum by (function_name) (increase(lab_lambda_invocations_total{{{{sel}}, {fn}}}[1m]))"),
                "{{function_name}} {{destination_type}}"),),
            ((None, GREEN), (1, ORANGE)),
        ),
        PanelSpec(
            "app-api-requests", "API requests by status class",
            "API Gateway requests per second per API and status class (Count, 4XXError, "
            "5XXError).", "reqps",
            (Query(_rate("lab_apigateway_requests_total", api, by="api_name, status_class"),
                   "{{api_name}} {{status_class}}"),),
            ((None, GREEN),),
        ),
        PanelSpec(
            "app-api-429", "API 429s (usage plan throttle and quota)",
            "Requests answered 429 per second per API: a usage plan's rate, burst or quota "
            "reached.", "reqps",
            (Query(_zero_if_none(_rate("lab_apigateway_throttled_total", api, by="api_name"),
                                 api_requests), "{{api_name}}"),),
            ((None, GREEN), (1, ORANGE), (5, RED)),
        ),
        PanelSpec(
            "app-api-latency", "API latency p95",
            "API Gateway Latency, 95th percentile, per API.", "s",
            (Query(_quantile(0.95, "lab_apigateway_latency_seconds_bucket", api, by="api_name"),
                   "{{api_name}}"),),
            ((None, GREEN), (1, ORANGE), (10, RED)),
        ),
        PanelSpec(
            "app-queues", "Queue depth",
            "SQS messages visible and in flight, per queue of the account.", "short",
            (
                Query("sum by (queue_name) (lab_sqs_messages_visible{{sel}})", "visible {{queue_name}}"),
                Query("sum by (queue_name) (lab_sqs_messages_not_visible{{sel}})",
                      "in flight {{queue_name}}"),
            ),
            ((None, GREEN), (100, ORANGE), (1000, RED)),
        ),
        PanelSpec(
            "app-events", "EventBridge rules: matched, invocations, failed",
            "Events per second per rule: matched, target invocations, and failed invocations "
            "(a target that could not be invoked after EventBridge's retries).", "reqps",
            (
                Query(_rate("lab_events_matched_events_total", by="rule"), "matched {{rule}}"),
                Query(_zero_if_none(_rate("lab_events_failed_invocations_total", by="rule"),
                                    _rate("lab_events_matched_events_total", by="rule")),
                      "failed {{rule}}"),
            ),
            ((None, GREEN), (0.1, ORANGE)),
        ),
    )
