"""Provision every topology, each complete in its own emulated account, and write endpoints.json.

Per topology, in dependency order: roles and log groups; the courier (table, function, REST API
with key and usage plan); the delivery configuration (SSM parameter, secret) filled from what was
just created; the bus; the delivery path, one unit per wiring kind of lab_kernel/topologies.toml
(async-invoke: rule -> DeliveryFunction with async retries and an on-failure queue; sqs-esm:
rule -> queue -> event source mapping, DLQ; eventbridge-api-destination: rule -> API destination -> courier,
no DeliveryFunction, DLQ); finally the notification API in front of the bus.
Every step is idempotent.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap import topology as t
from bootstrap.aws import Clients
from bootstrap.packaging import Package, build_all
from bootstrap.progress import Progress
from bootstrap.resources import (
    FunctionSpec,
    ServiceUnavailable,
    ensure_api_destination,
    ensure_api_key,
    ensure_api_key_connection,
    ensure_async_config,
    ensure_event_bus,
    ensure_event_source_mapping,
    ensure_function,
    ensure_lambda_proxy_api,
    ensure_log_group,
    ensure_parameter,
    ensure_permission,
    ensure_queue,
    ensure_reserved_concurrency,
    ensure_role,
    ensure_rule,
    ensure_secret,
    ensure_table,
    ensure_usage_plan,
)
from lab_kernel import endpoints as contract
from lab_kernel.settings import Settings

# `$LAB_ENDPOINTS_FILE` selects another file (a second, private lab), as the readers accept it.
ENDPOINTS_FILE = contract.default_path()
COURIER_PROFILES = ("seed", "seed-code")


class ProvisioningError(RuntimeError):
    """Provisioning cannot go on; the message says what to fix."""


def _statement(actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _logs_statement(c: Clients, function: str) -> dict[str, Any]:
    group = c.arn("logs", f"log-group:{t.log_group(function)}")
    return _statement(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], [group, f"{group}:*"])


def _faults_statement(c: Clients, function: str) -> dict[str, Any]:
    # lab_faults reads its run-time configuration from this parameter (`make chaos`)
    return _statement(["ssm:GetParameter"], [c.arn("ssm", f"parameter{t.FAULTS_PARAMETER_PREFIX}{function}")])


def _breaker_statements(c: Clients) -> list[dict[str, Any]]:
    # the circuit breaker's shared state and its retry queue (parked orders, redriven back)
    return [
        _statement(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                   [c.arn("dynamodb", f"table/{t.BREAKER_TABLE}")]),
        _statement(["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes"], [c.arn("sqs", t.BREAKER_RETRY_QUEUE)]),
    ]


def function_side_url(localstack_url: str, settings: Settings) -> str:
    """LocalStack's URL as a function sees it: the courier endpoint is written in this form.

    In host mode functions are local processes, so the host URL works. In Docker Compose mode
    they run inside the LocalStack container, where the gateway listens on 4566 whatever port the
    host maps. `LAB_FUNCTION_LOCALSTACK_URL` overrides the detection.
    """
    override = settings.values.get("LAB_FUNCTION_LOCALSTACK_URL") or os.environ.get("LAB_FUNCTION_LOCALSTACK_URL")
    if override:
        return override.rstrip("/")
    in_docker = bool(localstack_info(localstack_url).get("is_docker"))
    return "http://127.0.0.1:4566" if in_docker else localstack_url.rstrip("/")


def localstack_info(localstack_url: str) -> dict[str, Any]:
    """LocalStack's /_localstack/info, or a clear error instead of minutes of client retries."""
    try:
        with urllib.request.urlopen(f"{localstack_url.rstrip('/')}/_localstack/info", timeout=5) as response:
            return json.load(response)
    except OSError as error:
        raise ProvisioningError(
            f"LocalStack at {localstack_url} does not answer ({error}): start the lab with `make up`"
        ) from None


def check_account_concurrency(c: Clients, p: Progress, scope: str, expected: int | None) -> int:
    """`expected`: the topology's own limit (its setting times its `account_limit_factor`)."""
    limits = c.awslambda.get_account_settings()["AccountLimit"]
    limit = int(limits["ConcurrentExecutions"])
    note = f"account {c.account}: ConcurrentExecutions limit {limit}, unreserved {limits.get('UnreservedConcurrentExecutions')}"
    p.say(f"  [{scope}] {note}")
    if expected is not None and limit != expected:
        p.say(
            f"  [{scope}] warning: the catalogue asks for a limit of {expected} in account {c.account} but LocalStack"
            f" enforces {limit}: restart LocalStack (make down && make up) to apply the setting"
        )
    return limit


def breaker_resources(c: Clients, p: Progress, s: str) -> dict[str, str]:
    """What the circuit breaker needs before its function starts, for the catalogue's `breaker =
    true` and for `python -m resilience.breaker on` alike: its state table, the retry queue parked
    orders wait on, and the environment that turns it on. Returns the function's variables."""
    try:
        ensure_table(c, p, s, t.BREAKER_TABLE, "name")
    except ServiceUnavailable as error:
        # without its table the delivery function cannot even start (the breaker is built at import)
        raise ProvisioningError(f"{s}: the circuit breaker needs DynamoDB: {error}") from None
    retry_url, _ = ensure_queue(c, p, s, t.BREAKER_RETRY_QUEUE,
                                {"VisibilityTimeout": str(t.BREAKER_RETRY_VISIBILITY_TIMEOUT)})
    # thresholds and timeout are lab_breaker's defaults (failure 3, success 2, 10 s open)
    return {"CIRCUIT_BREAKER": "on", "CB_TABLE": t.BREAKER_TABLE, "CB_RETRY_QUEUE_URL": retry_url}


def map_breaker_retry_queue(c: Clients, p: Progress, s: str, function: str) -> str:
    """Parked orders come back through the same function, at most
    BREAKER_RETRY_MAX_CONCURRENCY batches at once, reporting failed items as every lab mapping does."""
    return ensure_event_source_mapping(c, p, s, function, c.arn("sqs", t.BREAKER_RETRY_QUEUE), 1,
                                       t.BREAKER_RETRY_MAX_CONCURRENCY)


# --- the delivery path, one provisioning unit per wiring kind (lab_kernel/topologies.toml) --------

@dataclass
class DeliveryPath:
    """What a wiring unit connects: the bus rule's pattern and ARN, the delivery function (None
    where the wiring has none), the courier as the bus would call it, and the queues it creates."""

    pattern: dict[str, Any]
    rule_arn: str
    delivery_arn: str | None
    courier_url: str
    api_key: str
    queues: dict[str, str | None]


def _sqs_esm_statement(c: Clients) -> dict[str, Any]:
    return _statement(
        ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
        [c.arn("sqs", t.DELIVERY_QUEUE)],
    )


def _events_to_queue_policy(c: Clients, queue: str, rule_arn: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "events-to-queue",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": c.arn("sqs", queue),
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    })


def _wire_sqs_esm(c: Clients, p: Progress, s: str, path: DeliveryPath) -> None:
    """rule -> queue (DLQ after maxReceiveCount) -> event source mapping with maximum concurrency."""
    dlq_url, dlq_arn = ensure_queue(c, p, s, t.DLQ, {"MessageRetentionPeriod": "1209600"})
    queue_url, queue_arn = ensure_queue(
        c, p, s, t.DELIVERY_QUEUE,
        {
            "VisibilityTimeout": str(t.QUEUE_VISIBILITY_TIMEOUT),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": t.MAX_RECEIVE_COUNT}),
            "Policy": _events_to_queue_policy(c, t.DELIVERY_QUEUE, path.rule_arn),
        },
    )
    ensure_rule(c, p, s, t.EVENT_BUS, t.RULE, path.pattern, "delivery-queue", queue_arn)
    ensure_event_source_mapping(c, p, s, t.DELIVERY, queue_arn, t.ESM_BATCH_SIZE, t.ESM_MAX_CONCURRENCY)
    path.queues.update(delivery=queue_url, dlq=dlq_url)


def _async_invoke_statement(c: Clients) -> dict[str, Any]:
    return _statement(["sqs:SendMessage"], [c.arn("sqs", t.ON_FAILURE_QUEUE)])


def _wire_async_invoke(c: Clients, p: Progress, s: str, path: DeliveryPath) -> None:
    """rule -> DeliveryFunction, invoked asynchronously: 2 retries, then the on-failure queue."""
    failures_url, failures_arn = ensure_queue(c, p, s, t.ON_FAILURE_QUEUE, {"MessageRetentionPeriod": "1209600"})
    ensure_async_config(c, p, s, t.DELIVERY, t.ASYNC_MAX_RETRIES, t.ASYNC_MAX_EVENT_AGE, failures_arn)
    ensure_permission(c, p, s, t.DELIVERY, "events-notify-order", "events.amazonaws.com", path.rule_arn)
    assert path.delivery_arn is not None
    ensure_rule(c, p, s, t.EVENT_BUS, t.RULE, path.pattern, "delivery-function", path.delivery_arn)
    path.queues.update(on_failure=failures_url)


def _wire_api_destination(c: Clients, p: Progress, s: str, path: DeliveryPath) -> None:
    """rule -> API destination (the courier's URL, paced at its rate, key from a connection); the
    order (the event's detail) is the body; events that exhaust the retry policy go to the DLQ."""
    dlq_url, dlq_arn = ensure_queue(
        c, p, s, t.DLQ,
        {"MessageRetentionPeriod": "1209600", "Policy": _events_to_queue_policy(c, t.DLQ, path.rule_arn)},
    )
    connection_arn = ensure_api_key_connection(c, p, s, t.COURIER_CONNECTION, "x-api-key", path.api_key)
    destination_arn = ensure_api_destination(c, p, s, t.COURIER_DESTINATION, connection_arn, path.courier_url,
                                             "POST", t.COURIER_DESTINATION_RATE)
    role_arn = ensure_role(c, p, s, t.EVENTS_ROLE,
                           _policy(_statement(["events:InvokeApiDestination"], [destination_arn])),
                           principal="events.amazonaws.com")
    ensure_rule(c, p, s, t.EVENT_BUS, t.RULE, path.pattern, "courier-destination", destination_arn,
                {"RoleArn": role_arn, "InputPath": "$.detail", "DeadLetterConfig": {"Arn": dlq_arn}})
    path.queues.update(dlq=dlq_url)


class WiringUnit:
    """How one wiring kind is provisioned: the delivery role's extra statement (None: the wiring
    has no delivery function) and the path itself."""

    def __init__(self, delivery_statement: Callable[[Clients], dict[str, Any]] | None,
                 wire: Callable[[Clients, Progress, str, DeliveryPath], None]) -> None:
        self.delivery_statement = delivery_statement
        self.wire = wire


WIRINGS: dict[str, WiringUnit] = {
    t.ASYNC_INVOKE: WiringUnit(_async_invoke_statement, _wire_async_invoke),
    t.SQS_ESM: WiringUnit(_sqs_esm_statement, _wire_sqs_esm),
    t.API_DESTINATION: WiringUnit(None, _wire_api_destination),
}


def _delivery_function(c: Clients, p: Progress, s: str, topo: t.Topology, role_arns: dict[str, str],
                       packages: dict[str, Package]) -> str:
    """DeliveryFunction with the catalogue's settings (reserved concurrency, breaker); its ARN."""
    breaker_environment = breaker_resources(c, p, s) if topo.delivery.breaker else {}
    delivery_arn = ensure_function(
        c, p, s,
        FunctionSpec(
            t.DELIVERY,
            role_arns[t.DELIVERY],
            {
                "ENDPOINT_PARAMETER": t.ENDPOINT_PARAMETER,
                "API_KEY_SECRET": t.API_KEY_SECRET,
                "PARAMETERS_MAX_AGE_SECONDS": "300",
                "LOG_LEVEL": "INFO",
                **breaker_environment,
            },
        ),
        packages[t.DELIVERY],
    )
    if topo.delivery.reserved_concurrency:
        ensure_reserved_concurrency(c, p, s, t.DELIVERY, topo.delivery.reserved_concurrency)
    if topo.delivery.breaker:
        map_breaker_retry_queue(c, p, s, t.DELIVERY)
    return delivery_arn


def provision_topology(
    c: Clients,
    topo: t.Topology,
    packages: dict[str, Package],
    p: Progress,
    *,
    function_url: str,
    public_url: str,
    courier_profile: str = "seed",
) -> dict[str, Any]:
    """Everything of one topology in its account; returns its endpoints.json entry."""
    s = topo.name
    p.say(f"{s} (account {topo.account}, {c.region})")
    bus_arn = c.arn("events", f"event-bus/{t.EVENT_BUS}")
    rule_arn = c.arn("events", f"rule/{t.EVENT_BUS}/{t.RULE}")
    table_arn = c.arn("dynamodb", f"table/{t.DELIVERIES_TABLE}")
    queues: dict[str, str | None] = {"delivery": None, "dlq": None, "on_failure": None}

    # 1. roles with least-privilege inline policies (LocalStack does not enforce IAM; AWS would)
    delivery_resources = [
        _statement(["ssm:GetParameter"], [c.arn("ssm", f"parameter{t.ENDPOINT_PARAMETER}")]),
        _statement(["secretsmanager:GetSecretValue"], [c.arn("secretsmanager", f"secret:{t.API_KEY_SECRET}-*")]),
        *_breaker_statements(c),
    ]
    wiring = WIRINGS[topo.wiring]
    roles = {
        t.NOTIFICATION: _policy(_logs_statement(c, t.NOTIFICATION), _faults_statement(c, t.NOTIFICATION),
                                _statement(["events:PutEvents"], [bus_arn])),
        t.COURIER: _policy(
            _logs_statement(c, t.COURIER), _faults_statement(c, t.COURIER),
            _statement(["dynamodb:PutItem", "dynamodb:UpdateItem"], [table_arn]),
        ),
    }
    if wiring.delivery_statement is not None:
        delivery_resources.append(wiring.delivery_statement(c))
        roles[t.DELIVERY] = _policy(_logs_statement(c, t.DELIVERY), _faults_statement(c, t.DELIVERY),
                                    *delivery_resources)
    role_arns = {fn: ensure_role(c, p, s, f"sls-observe-{fn}-role", doc) for fn, doc in roles.items()}
    for fn in t.FUNCTION_FOLDERS:
        if fn != t.DELIVERY or topo.has_delivery_function:
            ensure_log_group(c, p, s, t.log_group(fn))

    # 2. the courier: table, function, REST API with key and usage plan
    try:
        ensure_table(c, p, s, t.DELIVERIES_TABLE, "correlation_id")
    except ServiceUnavailable as error:
        # The ledger only counts duplicate deliveries; the pipeline itself does not need it, so
        # the lab still comes up, and the courier logs every unrecorded delivery as an error.
        p.say(f"  [{s}] WARNING: {error}")
        p.say(f"  [{s}] WARNING: table {t.DELIVERIES_TABLE} not created: duplicate deliveries are not counted")
    courier_arn = ensure_function(
        c, p, s,
        FunctionSpec(
            t.COURIER,
            role_arns[t.COURIER],
            {"DELIVERIES_TABLE": t.DELIVERIES_TABLE, "COURIER_PROFILE": courier_profile, "LOG_LEVEL": "INFO"},
        ),
        packages[t.COURIER],
    )
    courier_api = ensure_lambda_proxy_api(
        c, p, s, t.COURIER_API, "Ace Courier scheduling API (SlowAPI)", "slow", t.COURIER, courier_arn,
        api_key_required=True,
    )
    key_id, key_value = ensure_api_key(c, p, s, t.API_KEY)
    ensure_usage_plan(c, p, s, t.USAGE_PLAN, courier_api, key_id, t.COURIER_RATE_LIMIT, t.COURIER_BURST_LIMIT)

    # 3. delivery's configuration, filled from what was just created (the seed did this by hand)
    courier_url = t.api_url(function_url, courier_api, "slow")
    ensure_parameter(c, p, s, t.ENDPOINT_PARAMETER, courier_url)
    ensure_secret(c, p, s, t.API_KEY_SECRET, key_value)

    # 4. the bus and the delivery path, with the catalogue's delivery settings
    ensure_event_bus(c, p, s, t.EVENT_BUS)
    delivery_arn = _delivery_function(c, p, s, topo, role_arns, packages) if topo.has_delivery_function else None
    pattern = {"account": [topo.account], "detail-type": [t.DETAIL_TYPE]}
    wiring.wire(c, p, s, DeliveryPath(pattern, rule_arn, delivery_arn, courier_url, key_value, queues))

    # 5. the shop's webhook in front of the bus: no key, no throttle
    notification_arn = ensure_function(
        c, p, s,
        FunctionSpec(t.NOTIFICATION, role_arns[t.NOTIFICATION], {"EVENTBUS_NAME": t.EVENT_BUS, "LOG_LEVEL": "INFO"}),
        packages[t.NOTIFICATION],
    )
    notify_api = ensure_lambda_proxy_api(
        c, p, s, t.NOTIFY_API, "Order notifications from the shop", "notify", t.NOTIFICATION, notification_arn,
        api_key_required=False,
    )

    return {
        "account": topo.account,
        "region": c.region,
        "localstack_url": public_url,
        "notify_url": t.api_url(public_url, notify_api, "notify"),
        "courier_url": t.api_url(public_url, courier_api, "slow"),
        "api_key_secret": t.API_KEY_SECRET,
        "endpoint_parameter": t.ENDPOINT_PARAMETER,
        "queues": queues,
        "functions": dict(t.FUNCTION_ROLES),
        "log_groups": {role: t.log_group(fn) for role, fn in t.FUNCTION_ROLES.items()},
        "deliveries_table": t.DELIVERIES_TABLE,
        "event_bus": t.EVENT_BUS,
    }


def write_endpoints(endpoints: dict[str, Any], path: Path) -> None:
    """Through the contract: checked against endpoints.schema.json, written atomically."""
    contract.write(endpoints, path)


def provision_all(
    localstack_url: str,
    settings: Settings,
    *,
    endpoints_file: Path | None = ENDPOINTS_FILE,
    progress: Progress | None = None,
    topologies: tuple[t.Topology, ...] | None = None,
    urls: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Package the functions, provision the topologies, write and return endpoints.json's content.

    `topologies=None`: the ones `$TOPOLOGIES` chooses (unset: the comparison pair).

    `urls` maps a topology to its own LocalStack (one process per topology, labctl); a topology
    not in it, or `urls=None`, is provisioned on `localstack_url`. `endpoints_file=None` skips
    writing (tests use their own LocalStack and must not overwrite the running lab's file).
    """
    p = progress or Progress()
    localstack_url = localstack_url.rstrip("/")
    urls = {name: url.rstrip("/") for name, url in (urls or {}).items()}
    courier_profile = settings.get("LAB_COURIER_PROFILE", "seed")
    if courier_profile not in COURIER_PROFILES:
        raise ProvisioningError(f"LAB_COURIER_PROFILE={courier_profile!r}: use one of {', '.join(COURIER_PROFILES)}")
    topologies = t.chosen() if topologies is None else topologies
    p.say("packaging functions")
    packages = build_all(p)
    endpoints: dict[str, Any] = {
        "localstack_url": localstack_url,
        "prometheus_url": settings.prometheus_url,
        "grafana_url": settings.grafana_url,
        "topologies": {},
    }
    for topo in topologies:
        url = urls.get(topo.name, localstack_url)
        function_url = function_side_url(url, settings)
        p.say(f"bootstrap: [{topo.name}] LocalStack {url} (functions reach it at {function_url})")
        c = Clients(url, topo.account)
        endpoints["topologies"][topo.name] = provision_topology(
            c, topo, packages, p, function_url=function_url, public_url=url,
            courier_profile=courier_profile,
        )
        base = settings.values.get(topo.account_limit_setting)
        expected = topo.account_limit(settings.integer(topo.account_limit_setting, 1)) if base is not None else None
        check_account_concurrency(c, p, topo.name, expected)
    if endpoints_file is not None:
        write_endpoints(endpoints, endpoints_file)
        p.say(f"wrote {endpoints_file}")
    if p.changed:
        p.say(f"bootstrap: done in {p.elapsed():.1f} s: {p.counts['created']} created, "
              f"{p.counts['updated']} updated, {p.counts['unchanged']} unchanged")
    else:
        p.say(f"bootstrap: done in {p.elapsed():.1f} s: nothing to change, "
              f"all {p.counts['unchanged']} resources already as wanted")
    return endpoints
