"""Remove everything `provision` created, topology by topology, and the endpoints file.

Deletes in reverse dependency order (triggers before functions, usage plans before APIs) and
reports `deleted` or `absent` per resource, so it is safe to run twice or after a failed run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from bootstrap import topology as t
from bootstrap.aws import Clients
from bootstrap.progress import Progress
from bootstrap.provision import ENDPOINTS_FILE, localstack_info
from bootstrap.resources import INLINE_POLICY

_ABSENT_CODES = {
    "ResourceNotFoundException",
    "NotFoundException",
    "NoSuchEntity",
    "ParameterNotFound",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
}


def _delete(
    p: Progress, scope: str, what: str, call: Callable[[], Any], exists: Callable[[], Any] | None = None
) -> None:
    """`exists` first for APIs whose delete succeeds on a missing resource (DeleteEventBus)."""
    try:
        if exists is not None:
            exists()
        call()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _ABSENT_CODES:
            p.record(scope, what, "absent")
            return
        raise
    p.record(scope, what, "deleted")


def teardown_topology(c: Clients, topo: t.Topology, p: Progress) -> None:
    s = topo.name
    p.say(f"{s} (account {topo.account})")
    for mapping in c.awslambda.list_event_source_mappings(FunctionName=t.DELIVERY).get("EventSourceMappings", []):
        _delete(p, s, f"event source mapping {mapping['UUID']}",
                lambda: c.awslambda.delete_event_source_mapping(UUID=mapping["UUID"]))
    try:
        targets = c.events.list_targets_by_rule(Rule=t.RULE, EventBusName=t.EVENT_BUS).get("Targets", [])
    except ClientError:
        targets = []
    if targets:
        c.events.remove_targets(Rule=t.RULE, EventBusName=t.EVENT_BUS, Ids=[x["Id"] for x in targets])
    _delete(p, s, f"rule {t.RULE}", lambda: c.events.delete_rule(Name=t.RULE, EventBusName=t.EVENT_BUS))
    _delete(p, s, f"event bus {t.EVENT_BUS}", lambda: c.events.delete_event_bus(Name=t.EVENT_BUS),
            exists=lambda: c.events.describe_event_bus(Name=t.EVENT_BUS))
    for fn in t.FUNCTION_FOLDERS:
        _delete(p, s, f"function {fn}", lambda fn=fn: c.awslambda.delete_function(FunctionName=fn))

    for plan in c.apigateway.get_usage_plans(limit=500).get("items", []):
        if plan["name"] != t.USAGE_PLAN:
            continue
        ops = [{"op": "remove", "path": "/apiStages", "value": f"{st['apiId']}:{st['stage']}"}
               for st in plan.get("apiStages", [])]
        if ops:
            c.apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=ops)
        _delete(p, s, f"usage plan {t.USAGE_PLAN}", lambda plan=plan: c.apigateway.delete_usage_plan(usagePlanId=plan["id"]))
    for key in c.apigateway.get_api_keys(nameQuery=t.API_KEY, limit=500).get("items", []):
        if key["name"] == t.API_KEY:
            _delete(p, s, f"API key {t.API_KEY}", lambda key=key: c.apigateway.delete_api_key(apiKey=key["id"]))
    apis = [a for page in c.apigateway.get_paginator("get_rest_apis").paginate() for a in page.get("items", [])]
    for api in apis:
        if api["name"] in (t.NOTIFY_API, t.COURIER_API):
            _delete(p, s, f"REST API {api['name']}", lambda api=api: c.apigateway.delete_rest_api(restApiId=api["id"]))

    for queue in (t.DELIVERY_QUEUE, t.DLQ, t.ON_FAILURE_QUEUE, t.BREAKER_RETRY_QUEUE):
        def delete_queue(queue: str = queue) -> None:
            c.sqs.delete_queue(QueueUrl=c.sqs.get_queue_url(QueueName=queue)["QueueUrl"])
        _delete(p, s, f"queue {queue}", delete_queue)
    _delete(p, s, f"table {t.DELIVERIES_TABLE}", lambda: c.dynamodb.delete_table(TableName=t.DELIVERIES_TABLE))
    _delete(p, s, f"table {t.BREAKER_TABLE}", lambda: c.dynamodb.delete_table(TableName=t.BREAKER_TABLE))
    _delete(p, s, f"parameter {t.ENDPOINT_PARAMETER}", lambda: c.ssm.delete_parameter(Name=t.ENDPOINT_PARAMETER))
    _delete(p, s, f"secret {t.API_KEY_SECRET}",
            lambda: c.secretsmanager.delete_secret(SecretId=t.API_KEY_SECRET, ForceDeleteWithoutRecovery=True),
            exists=lambda: c.secretsmanager.describe_secret(SecretId=t.API_KEY_SECRET))
    for fn in t.FUNCTION_FOLDERS:
        _delete(p, s, f"log group {t.log_group(fn)}", lambda fn=fn: c.logs.delete_log_group(logGroupName=t.log_group(fn)))
        role = f"sls-observe-{fn}-role"

        def delete_role(role: str = role) -> None:
            try:
                c.iam.delete_role_policy(RoleName=role, PolicyName=INLINE_POLICY)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "NoSuchEntity":
                    raise
            c.iam.delete_role(RoleName=role)

        _delete(p, s, f"role {role}", delete_role)


def teardown_all(
    localstack_url: str,
    *,
    endpoints_file: Path | None = ENDPOINTS_FILE,
    progress: Progress | None = None,
    topologies: tuple[t.Topology, ...] | None = None,
    urls: dict[str, str] | None = None,
) -> None:
    """Remove what `provision_all` made; `urls` and `topologies` as there."""
    p = progress or Progress()
    topologies = t.chosen() if topologies is None else topologies
    for topo in topologies:
        url = (urls or {}).get(topo.name, localstack_url).rstrip("/")
        localstack_info(url)
        p.say(f"teardown: [{topo.name}] LocalStack {url}")
        teardown_topology(Clients(url, topo.account), topo, p)
    if endpoints_file is not None and endpoints_file.exists():
        endpoints_file.unlink()
        p.say(f"removed {endpoints_file}")
    p.say(f"teardown: done in {p.elapsed():.1f} s: {p.counts['deleted']} deleted, {p.counts['absent']} already absent")
