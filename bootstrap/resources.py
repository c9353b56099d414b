"""Idempotent "ensure" steps, one AWS resource each: create if absent, update if different.

Every step reads the current state first and reports `created`, `updated` or `unchanged`, so a
second run changes nothing and says so. The calls are the plain AWS APIs, as they would run
against a real account.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from bootstrap.aws import Clients
from bootstrap.packaging import Package
from bootstrap.progress import Progress
from bootstrap.topology import MEMORY_MB, RUNTIME, STAGE, TIMEOUT_SECONDS


def trust_policy(principal: str) -> dict[str, Any]:
    """Who may assume a role: one AWS service."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}],
    }


INLINE_POLICY = "sls-observe-inline"


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _policy_doc(value: Any) -> Any:
    """IAM returns policy documents URL-encoded on AWS, as JSON or a dict elsewhere."""
    if isinstance(value, str):
        text = urllib.parse.unquote(value) if value.lstrip().startswith("%") else value
        return json.loads(text)
    return value


def _same_json(a: Any, b: Any) -> bool:
    return json.dumps(_policy_doc(a), sort_keys=True) == json.dumps(_policy_doc(b), sort_keys=True)


# --- IAM and logs -------------------------------------------------------------------------------


def ensure_role(c: Clients, p: Progress, scope: str, name: str, policy: dict[str, Any],
                principal: str = "lambda.amazonaws.com") -> str:
    try:
        role = c.iam.get_role(RoleName=name)["Role"]
        action = "unchanged"
    except ClientError as error:
        if _code(error) != "NoSuchEntity":
            raise
        role = c.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust_policy(principal)))["Role"]
        action = "created"
    try:
        current = c.iam.get_role_policy(RoleName=name, PolicyName=INLINE_POLICY)["PolicyDocument"]
    except ClientError as error:
        if _code(error) != "NoSuchEntity":
            raise
        current = None
    if current is None or not _same_json(current, policy):
        c.iam.put_role_policy(RoleName=name, PolicyName=INLINE_POLICY, PolicyDocument=json.dumps(policy))
        action = "created" if action == "created" else "updated"
    p.record(scope, f"role {name}", action)
    return role["Arn"]


def ensure_log_group(c: Clients, p: Progress, scope: str, name: str, retention_days: int = 7) -> None:
    groups = c.logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
    group = next((g for g in groups if g["logGroupName"] == name), None)
    action = "unchanged"
    if group is None:
        try:
            c.logs.create_log_group(logGroupName=name)
        except ClientError as error:  # a first invocation may have created it meanwhile
            if _code(error) != "ResourceAlreadyExistsException":
                raise
        action = "created"
    if group is None or group.get("retentionInDays") != retention_days:
        c.logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)
        action = "created" if action == "created" else "updated"
    p.record(scope, f"log group {name}", action, f"retention {retention_days} d")


# --- data stores and configuration --------------------------------------------------------------


class ServiceUnavailable(RuntimeError):
    """A LocalStack service answers with internal errors (e.g. a backend it could not install)."""


def ensure_table(c: Clients, p: Progress, scope: str, name: str, key: str) -> str:
    try:
        table = c.dynamodb.describe_table(TableName=name)["Table"]
        p.record(scope, f"table {name}", "unchanged")
        return table["TableArn"]
    except ClientError as error:
        if _code(error) in ("InternalError", "InternalFailure", "ServiceUnavailable"):
            # LocalStack's DynamoDB is DynamoDB Local: it needs Java 21 and a download at first
            # use, and answers 500 when that failed (e.g. offline).
            raise ServiceUnavailable(f"DynamoDB does not work in this LocalStack: {error}") from None
        if _code(error) != "ResourceNotFoundException":
            raise
    table = c.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]
    c.dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    p.record(scope, f"table {name}", "created", f"key {key}")
    return table["TableArn"]


def ensure_parameter(c: Clients, p: Progress, scope: str, name: str, value: str) -> None:
    try:
        current = c.ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if _code(error) != "ParameterNotFound":
            raise
        current = None
    if current == value:
        p.record(scope, f"parameter {name}", "unchanged")
        return
    c.ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
    p.record(scope, f"parameter {name}", "created" if current is None else "updated", value)


def ensure_secret(c: Clients, p: Progress, scope: str, name: str, value: str) -> str:
    try:
        current = c.secretsmanager.get_secret_value(SecretId=name)
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        arn = c.secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
        p.record(scope, f"secret {name}", "created")
        return arn
    if current.get("SecretString") != value:
        c.secretsmanager.put_secret_value(SecretId=name, SecretString=value)
        p.record(scope, f"secret {name}", "updated", "new value")
    else:
        p.record(scope, f"secret {name}", "unchanged")
    return current["ARN"]


# --- SQS ----------------------------------------------------------------------------------------


def ensure_queue(c: Clients, p: Progress, scope: str, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    """Returns (queue URL, queue ARN). `attributes` values as SQS wants them (strings)."""
    try:
        url = c.sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if "NonExistentQueue" not in _code(error) and _code(error) != "QueueDoesNotExist":
            raise
        url = c.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        p.record(scope, f"queue {name}", "created", ", ".join(f"{k}={v[:40]}" for k, v in attributes.items()))
        return url, c.arn("sqs", name)
    current = c.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    differs = {
        k: v
        for k, v in attributes.items()
        if not (_same_json(current[k], v) if k in ("Policy", "RedrivePolicy") and k in current else current.get(k) == v)
    }
    if differs:
        c.sqs.set_queue_attributes(QueueUrl=url, Attributes=differs)
        p.record(scope, f"queue {name}", "updated", ", ".join(sorted(differs)))
    else:
        p.record(scope, f"queue {name}", "unchanged")
    return url, current["QueueArn"]


# --- Lambda -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    role_arn: str
    environment: dict[str, str] = field(default_factory=dict)
    timeout: int = TIMEOUT_SECONDS
    memory: int = MEMORY_MB
    handler: str = "app.handler"
    runtime: str = RUNTIME

    def configuration(self) -> dict[str, Any]:
        return {
            "Runtime": self.runtime,
            "Handler": self.handler,
            "Role": self.role_arn,
            "Timeout": self.timeout,
            "MemorySize": self.memory,
            "Environment": {"Variables": dict(self.environment)},
        }


def _wait_function(c: Clients, name: str, waiter: str) -> None:
    c.awslambda.get_waiter(waiter).wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def ensure_function(c: Clients, p: Progress, scope: str, spec: FunctionSpec, package: Package) -> str:
    desired = spec.configuration()
    try:
        current = c.awslambda.get_function(FunctionName=spec.name)["Configuration"]
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        created = c.awslambda.create_function(
            FunctionName=spec.name, Code={"ZipFile": package.read()}, Publish=False, **desired
        )
        _wait_function(c, spec.name, "function_active_v2")
        p.record(scope, f"function {spec.name}", "created", f"{spec.runtime}, {spec.memory} MB, {spec.timeout} s")
        return created["FunctionArn"]
    changes: list[str] = []
    if current.get("CodeSha256") != package.code_sha256:
        c.awslambda.update_function_code(FunctionName=spec.name, ZipFile=package.read())
        _wait_function(c, spec.name, "function_updated_v2")
        changes.append("code")
    now = {
        "Runtime": current.get("Runtime"),
        "Handler": current.get("Handler"),
        "Role": current.get("Role"),
        "Timeout": current.get("Timeout"),
        "MemorySize": current.get("MemorySize"),
        "Environment": {"Variables": current.get("Environment", {}).get("Variables", {})},
    }
    # Variables set by others (the resilience CLIs' CB_* / fault settings) are kept: bootstrap
    # owns only the variables it sets, so re-running it never switches someone's experiment off.
    desired["Environment"] = {"Variables": {**now["Environment"]["Variables"], **spec.environment}}
    differing = [k for k in desired if desired[k] != now[k]]
    if differing:
        c.awslambda.update_function_configuration(FunctionName=spec.name, **desired)
        _wait_function(c, spec.name, "function_updated_v2")
        changes += differing
    p.record(scope, f"function {spec.name}", "updated" if changes else "unchanged", ", ".join(changes))
    return current["FunctionArn"]


def ensure_permission(
    c: Clients, p: Progress, scope: str, function: str, sid: str, principal: str, source_arn: str
) -> None:
    try:
        policy = json.loads(c.awslambda.get_policy(FunctionName=function)["Policy"])
        statements = {s.get("Sid"): s for s in policy.get("Statement", [])}
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        statements = {}
    existing = statements.get(sid)
    if existing is not None and source_arn in json.dumps(existing.get("Condition", {})):
        p.record(scope, f"permission {function}/{sid}", "unchanged")
        return
    if existing is not None:
        c.awslambda.remove_permission(FunctionName=function, StatementId=sid)
    c.awslambda.add_permission(
        FunctionName=function,
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal=principal,
        SourceArn=source_arn,
    )
    p.record(scope, f"permission {function}/{sid}", "updated" if existing else "created", principal)


def ensure_async_config(
    c: Clients, p: Progress, scope: str, function: str, retries: int, max_age: int, on_failure_arn: str
) -> None:
    desired = {
        "MaximumRetryAttempts": retries,
        "MaximumEventAgeInSeconds": max_age,
        "DestinationConfig": {"OnFailure": {"Destination": on_failure_arn}},
    }
    try:
        current = c.awslambda.get_function_event_invoke_config(FunctionName=function)
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        current = None
    if current is not None and all(
        current.get(k) == v if k != "DestinationConfig" else
        current.get(k, {}).get("OnFailure", {}).get("Destination") == on_failure_arn
        for k, v in desired.items()
    ):
        p.record(scope, f"async config {function}", "unchanged")
        return
    c.awslambda.put_function_event_invoke_config(FunctionName=function, **desired)
    p.record(
        scope,
        f"async config {function}",
        "created" if current is None else "updated",
        f"{retries} retries, on-failure -> {on_failure_arn.rsplit(':', 1)[-1]}",
    )


def ensure_event_source_mapping(
    c: Clients,
    p: Progress,
    scope: str,
    function: str,
    queue_arn: str,
    batch_size: int,
    max_concurrency: int | None,
) -> str:
    """`max_concurrency=None`: no ScalingConfig, the mapping scales as Lambda's default does."""
    desired: dict[str, Any] = {
        "BatchSize": batch_size,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    if max_concurrency is not None:
        desired["ScalingConfig"] = {"MaximumConcurrency": max_concurrency}
    mappings = c.awslambda.list_event_source_mappings(EventSourceArn=queue_arn, FunctionName=function)
    current = next(iter(mappings.get("EventSourceMappings", [])), None)
    if current is None:
        uuid = c.awslambda.create_event_source_mapping(
            EventSourceArn=queue_arn, FunctionName=function, Enabled=True, **desired
        )["UUID"]
        action = "created"
    else:
        uuid = current["UUID"]
        same = (
            current.get("BatchSize") == batch_size
            and current.get("ScalingConfig", {}).get("MaximumConcurrency") == max_concurrency
            and current.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
        )
        if same:
            p.record(scope, f"event source mapping {function}", "unchanged", uuid)
            return uuid
        c.awslambda.update_event_source_mapping(UUID=uuid, **desired)
        action = "updated"
    deadline = time.monotonic() + 60
    while (state := c.awslambda.get_event_source_mapping(UUID=uuid)["State"]) != "Enabled":
        if time.monotonic() > deadline:
            raise RuntimeError(f"event source mapping {uuid} stuck in state {state}")
        time.sleep(0.5)
    p.record(
        scope,
        f"event source mapping {function}",
        action,
        f"batch {batch_size}, max concurrency {max_concurrency or 'unset'}, ReportBatchItemFailures",
    )
    return uuid


def ensure_reserved_concurrency(c: Clients, p: Progress, scope: str, function: str, reserved: int) -> None:
    """PutFunctionConcurrency when the function's reservation differs. Only a reservation the
    catalogue asks for is managed: a 0 set by `make kill-switch` elsewhere is left as it is."""
    current = c.awslambda.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions")
    if current == reserved:
        p.record(scope, f"reserved concurrency {function}", "unchanged", str(reserved))
        return
    c.awslambda.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=reserved)
    p.record(scope, f"reserved concurrency {function}", "created" if current is None else "updated", str(reserved))


# --- EventBridge --------------------------------------------------------------------------------


def ensure_event_bus(c: Clients, p: Progress, scope: str, name: str) -> str:
    try:
        arn = c.events.describe_event_bus(Name=name)["Arn"]
        p.record(scope, f"event bus {name}", "unchanged")
        return arn
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
    arn = c.events.create_event_bus(Name=name)["EventBusArn"]
    p.record(scope, f"event bus {name}", "created")
    return arn


def ensure_rule(
    c: Clients, p: Progress, scope: str, bus: str, name: str, pattern: dict[str, Any], target_id: str, target_arn: str,
    target_settings: dict[str, Any] | None = None,
) -> str:
    """The rule with exactly one target; `target_settings`: the target's other fields (RoleArn,
    InputPath, RetryPolicy, DeadLetterConfig ...), compared and applied with it."""
    settings = target_settings or {}
    try:
        rule = c.events.describe_rule(Name=name, EventBusName=bus)
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        rule = None
    if rule is None or not _same_json(rule.get("EventPattern", "{}"), pattern) or rule.get("State") != "ENABLED":
        arn = c.events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED")["RuleArn"]
        p.record(scope, f"rule {name}", "created" if rule is None else "updated", json.dumps(pattern))
    else:
        arn = rule["Arn"]
        p.record(scope, f"rule {name}", "unchanged")
    targets = c.events.list_targets_by_rule(Rule=name, EventBusName=bus).get("Targets", [])
    wanted = [(target_id, target_arn, settings)]
    if [(t["Id"], t["Arn"], {k: t.get(k) for k in settings}) for t in targets] == wanted:
        p.record(scope, f"rule target {target_id}", "unchanged")
        return arn
    stale = [t["Id"] for t in targets if t["Id"] != target_id]
    if stale:
        c.events.remove_targets(Rule=name, EventBusName=bus, Ids=stale)
    result = c.events.put_targets(Rule=name, EventBusName=bus,
                                  Targets=[{"Id": target_id, "Arn": target_arn, **settings}])
    if result.get("FailedEntryCount"):
        raise RuntimeError(f"put_targets failed for rule {name}: {result.get('FailedEntries')}")
    p.record(scope, f"rule target {target_id}", "updated" if targets else "created", target_arn.rsplit(":", 1)[-1])
    return arn


def ensure_api_key_connection(c: Clients, p: Progress, scope: str, name: str, header: str, value: str) -> str:
    """An EventBridge connection that sends `header: value` (API_KEY authorization); its ARN.
    The key's value is kept in the secret EventBridge manages for the connection, read to compare."""
    auth = {"ApiKeyAuthParameters": {"ApiKeyName": header, "ApiKeyValue": value}}
    try:
        current = c.events.describe_connection(Name=name)
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        arn = c.events.create_connection(Name=name, AuthorizationType="API_KEY", AuthParameters=auth)["ConnectionArn"]
        p.record(scope, f"connection {name}", "created", f"API_KEY {header}")
        return arn
    stored = json.loads(c.secretsmanager.get_secret_value(SecretId=current["SecretArn"])["SecretString"])
    if current.get("AuthorizationType") != "API_KEY" or stored.get("api_key_name") != header \
            or stored.get("api_key_value") != value:
        c.events.update_connection(Name=name, AuthorizationType="API_KEY", AuthParameters=auth)
        p.record(scope, f"connection {name}", "updated", f"API_KEY {header}")
    else:
        p.record(scope, f"connection {name}", "unchanged")
    return current["ConnectionArn"]


def ensure_api_destination(c: Clients, p: Progress, scope: str, name: str, connection_arn: str, endpoint: str,
                           method: str, rate: int) -> str:
    """An EventBridge API destination (`rate`: InvocationRateLimitPerSecond); its ARN."""
    wanted = {"ConnectionArn": connection_arn, "InvocationEndpoint": endpoint, "HttpMethod": method,
              "InvocationRateLimitPerSecond": rate}
    try:
        current = c.events.describe_api_destination(Name=name)
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        arn = c.events.create_api_destination(Name=name, **wanted)["ApiDestinationArn"]
        p.record(scope, f"API destination {name}", "created", f"{method} {endpoint}, {rate}/s")
        return arn
    if {k: current.get(k) for k in wanted} != wanted:
        c.events.update_api_destination(Name=name, **wanted)
        p.record(scope, f"API destination {name}", "updated", f"{method} {endpoint}, {rate}/s")
    else:
        p.record(scope, f"API destination {name}", "unchanged")
    return current["ApiDestinationArn"]


# --- API Gateway (REST, v1) ---------------------------------------------------------------------


def ensure_rest_api(c: Clients, p: Progress, scope: str, name: str, description: str) -> str:
    apis = [a for page in c.apigateway.get_paginator("get_rest_apis").paginate() for a in page.get("items", [])]
    matching = [a for a in apis if a["name"] == name]
    if matching:
        if len(matching) > 1:
            p.say(f"  [{scope}] warning: {len(matching)} REST APIs named {name}; using {matching[0]['id']}")
        p.record(scope, f"REST API {name}", "unchanged", matching[0]["id"])
        return matching[0]["id"]
    api_id = c.apigateway.create_rest_api(
        name=name, description=description, endpointConfiguration={"types": ["REGIONAL"]}
    )["id"]
    p.record(scope, f"REST API {name}", "created", api_id)
    return api_id


def ensure_lambda_proxy_method(
    c: Clients,
    p: Progress,
    scope: str,
    api_id: str,
    path_part: str,
    function_arn: str,
    api_key_required: bool,
) -> bool:
    """`POST /{path_part}` as a Lambda proxy integration; returns True if anything changed."""
    resources = c.apigateway.get_resources(restApiId=api_id, limit=500)["items"]
    root = next(r for r in resources if r["path"] == "/")
    resource = next((r for r in resources if r["path"] == f"/{path_part}"), None)
    changed = created = False
    if resource is None:
        resource = c.apigateway.create_resource(restApiId=api_id, parentId=root["id"], pathPart=path_part)
        changed = created = True
    ids = {"restApiId": api_id, "resourceId": resource["id"], "httpMethod": "POST"}
    try:
        method = c.apigateway.get_method(**ids)
    except ClientError as error:
        if _code(error) != "NotFoundException":
            raise
        method = None
    if method is None:
        c.apigateway.put_method(**ids, authorizationType="NONE", apiKeyRequired=api_key_required)
        changed = created = True
    elif bool(method.get("apiKeyRequired")) != api_key_required:
        c.apigateway.update_method(
            **ids, patchOperations=[{"op": "replace", "path": "/apiKeyRequired", "value": str(api_key_required).lower()}]
        )
        changed = True
    uri = f"arn:aws:apigateway:{c.region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    integration = (method or {}).get("methodIntegration")
    if not integration or integration.get("type") != "AWS_PROXY" or integration.get("uri") != uri:
        c.apigateway.put_integration(**ids, type="AWS_PROXY", integrationHttpMethod="POST", uri=uri)
        changed = True
    key = "API key required" if api_key_required else "no API key"
    action = "created" if created else "updated" if changed else "unchanged"
    p.record(scope, f"method POST /{path_part}", action, f"Lambda proxy, {key}")
    return changed


def ensure_stage(c: Clients, p: Progress, scope: str, api_id: str, redeploy: bool) -> None:
    try:
        c.apigateway.get_stage(restApiId=api_id, stageName=STAGE)
        exists = True
    except ClientError as error:
        if _code(error) != "NotFoundException":
            raise
        exists = False
    if exists and not redeploy:
        p.record(scope, f"stage {STAGE} of {api_id}", "unchanged")
        return
    c.apigateway.create_deployment(restApiId=api_id, stageName=STAGE, description="bootstrap")
    p.record(scope, f"stage {STAGE} of {api_id}", "updated" if exists else "created", "deployed")


def ensure_lambda_proxy_api(
    c: Clients,
    p: Progress,
    scope: str,
    name: str,
    description: str,
    path_part: str,
    function: str,
    function_arn: str,
    api_key_required: bool,
) -> str:
    """A REST API whose `POST /{path_part}` invokes `function` (Lambda proxy), with API Gateway's
    permission to invoke it, deployed to the stage; returns the API id."""
    api_id = ensure_rest_api(c, p, scope, name, description)
    changed = ensure_lambda_proxy_method(c, p, scope, api_id, path_part, function_arn, api_key_required)
    ensure_permission(
        c, p, scope, function, f"apigateway-{path_part}", "apigateway.amazonaws.com",
        c.arn("execute-api", f"{api_id}/*/POST/{path_part}"),
    )
    ensure_stage(c, p, scope, api_id, redeploy=changed)
    return api_id


def ensure_api_key(c: Clients, p: Progress, scope: str, name: str) -> tuple[str, str]:
    """Returns (key id, key value)."""
    keys = c.apigateway.get_api_keys(nameQuery=name, includeValues=True, limit=500).get("items", [])
    key = next((k for k in keys if k["name"] == name), None)
    if key is not None:
        if not key.get("enabled", True):
            c.apigateway.update_api_key(apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "true"}])
            p.record(scope, f"API key {name}", "updated", "enabled")
        else:
            p.record(scope, f"API key {name}", "unchanged", key["id"])
        return key["id"], key["value"]
    key = c.apigateway.create_api_key(name=name, enabled=True)
    p.record(scope, f"API key {name}", "created", key["id"])
    return key["id"], key["value"]


def ensure_usage_plan(
    c: Clients, p: Progress, scope: str, name: str, api_id: str, key_id: str, rate: float, burst: int
) -> str:
    plans = c.apigateway.get_usage_plans(limit=500).get("items", [])
    plan = next((u for u in plans if u["name"] == name), None)
    stage = {"apiId": api_id, "stage": STAGE}
    if plan is None:
        plan = c.apigateway.create_usage_plan(
            name=name, apiStages=[stage], throttle={"rateLimit": rate, "burstLimit": burst}
        )
        p.record(scope, f"usage plan {name}", "created", f"rate {rate:g}/s, burst {burst}")
    else:
        ops: list[dict[str, str]] = []
        throttle = plan.get("throttle") or {}
        if float(throttle.get("rateLimit", -1)) != rate:
            ops.append({"op": "replace", "path": "/throttle/rateLimit", "value": str(rate)})
        if int(throttle.get("burstLimit", -1)) != burst:
            ops.append({"op": "replace", "path": "/throttle/burstLimit", "value": str(burst)})
        stages = [(s.get("apiId"), s.get("stage")) for s in plan.get("apiStages", [])]
        if (api_id, STAGE) not in stages:
            ops.append({"op": "add", "path": "/apiStages", "value": f"{api_id}:{STAGE}"})
        if ops:
            c.apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=ops)
        p.record(scope, f"usage plan {name}", "updated" if ops else "unchanged", f"rate {rate:g}/s, burst {burst}")
    plan_keys = c.apigateway.get_usage_plan_keys(usagePlanId=plan["id"], limit=500).get("items", [])
    if any(k["id"] == key_id for k in plan_keys):
        p.record(scope, "usage plan key", "unchanged")
    else:
        c.apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key_id, keyType="API_KEY")
        p.record(scope, "usage plan key", "created", key_id)
    return plan["id"]
