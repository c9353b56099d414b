"""bootstrap on a real LocalStack: run twice creates nothing new; teardown removes it all (#5).

Uses two scratch accounts (one topology of each kind), so it neither depends on nor disturbs the
lab accounts other tests provision in the same LocalStack. "Nothing new" is checked twice: by
bootstrap's own tally, and by an inventory read from the AWS APIs (ids, versions, modification
times), which would show a resource re-created or touched even if the tally said otherwise.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError

from bootstrap import topology as t
from bootstrap.provision import provision_all
from bootstrap.teardown import teardown_all
from lab_kernel import endpoints as contract
from lab_kernel.settings import Settings
from tests.integration.test_pipeline_support import recording_progress

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRATCH = (
    t.Topology("scratch-no-flow-control", "444444444441", wiring=t.ASYNC_INVOKE),
    t.Topology("scratch-flow-control", "444444444442", wiring=t.SQS_ESM),
)
SCHEMA = json.loads(contract.SCHEMA_FILE.read_text())


def _try(call, default: Any = None) -> Any:
    try:
        return call()
    except ClientError:
        return default


def _async_config(lam, function: str) -> tuple:
    config = lam.get_function_event_invoke_config(FunctionName=function)
    return (str(config.get("LastModified")), config.get("MaximumRetryAttempts"),
            config.get("MaximumEventAgeInSeconds"), json.dumps(config.get("DestinationConfig"), sort_keys=True))


def inventory(localstack, account: str) -> dict[str, Any]:
    """What exists in `account`, with the ids and versions that change when a thing is touched."""
    c = lambda service: localstack.client(service, account=account)  # noqa: E731
    lam, apigw, events = c("lambda"), c("apigateway"), c("events")
    functions = {
        f["FunctionName"]: (f["CodeSha256"], f["LastModified"], f["RevisionId"], f["Timeout"], f["MemorySize"])
        for f in lam.list_functions()["Functions"]
    }
    inv: dict[str, Any] = {
        "functions": functions,
        "policies": {fn: _try(lambda fn=fn: lam.get_policy(FunctionName=fn)["Policy"]) for fn in functions},
        "async": {fn: _try(lambda fn=fn: _async_config(lam, fn)) for fn in functions},
        "esms": sorted(
            (m["UUID"], str(m.get("LastModified")), m["BatchSize"], str(m.get("ScalingConfig")))
            for m in lam.list_event_source_mappings()["EventSourceMappings"]
        ),
        "queues": {
            url.rsplit("/", 1)[-1]: c("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"].get(
                "LastModifiedTimestamp")
            for url in c("sqs").list_queues().get("QueueUrls", [])
        },
        "buses": sorted(b["Name"] for b in events.list_event_buses()["EventBuses"]),
        "rules": {},
        "apis": {},
        "api_keys": sorted(k["id"] for k in apigw.get_api_keys()["items"]),
        "usage_plans": {
            u["id"]: (str(u.get("throttle")), str(u.get("apiStages")),
                      sorted(k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=u["id"])["items"]))
            for u in apigw.get_usage_plans()["items"]
        },
        "parameter": _try(lambda: c("ssm").get_parameter(Name=t.ENDPOINT_PARAMETER)["Parameter"]["Version"]),
        "secret": _try(lambda: sorted(
            v["VersionId"] for v in c("secretsmanager").list_secret_version_ids(SecretId=t.API_KEY_SECRET)["Versions"])),
        "log_groups": sorted((g["logGroupName"], g.get("retentionInDays"))
                             for g in c("logs").describe_log_groups()["logGroups"]),
        "roles": sorted(r["RoleName"] for r in c("iam").list_roles()["Roles"]),
        "tables": _try(lambda: sorted(c("dynamodb").list_tables()["TableNames"]), []),
    }
    for bus in inv["buses"]:
        for rule in events.list_rules(EventBusName=bus)["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            inv["rules"][f"{bus}/{rule['Name']}"] = (rule.get("EventPattern"), [(x["Id"], x["Arn"]) for x in targets])
    for api in apigw.get_rest_apis()["items"]:
        stages = apigw.get_stages(restApiId=api["id"])["item"]
        inv["apis"][api["id"]] = (
            api["name"],
            sorted(d["id"] for d in apigw.get_deployments(restApiId=api["id"])["items"]),
            sorted((s["stageName"], s["deploymentId"]) for s in stages),
            sorted((r["path"], str(sorted((r.get("resourceMethods") or {}).keys())))
                   for r in apigw.get_resources(restApiId=api["id"])["items"]),
        )
    return inv


def test_bootstrap_twice_creates_nothing_new_and_teardown_removes_it_all(localstack, tmp_path):
    settings = Settings.load()
    endpoints_file = tmp_path / "endpoints.json"

    # first run: everything is created
    first = recording_progress()
    endpoints = provision_all(localstack.url, settings, endpoints_file=endpoints_file, progress=first,
                              topologies=SCRATCH)
    assert first.counts["created"] >= 50, first.counts
    assert json.loads(endpoints_file.read_text()) == endpoints
    for topo in SCRATCH:
        entry = endpoints["topologies"][topo.name]
        jsonschema.validate(entry, {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/topology"})
        assert entry["account"] == topo.account
        assert (entry["queues"]["delivery"] is not None) == topo.queued
        assert (entry["queues"]["on_failure"] is not None) != topo.queued
        limit = localstack.client("lambda", account=topo.account).get_account_settings()["AccountLimit"]
        assert f"account {topo.account}: ConcurrentExecutions limit {limit['ConcurrentExecutions']}" in first.out.getvalue()
        # the roles already allow what the resilience tools use, so switching one on needs no IAM change
        iam = localstack.client("iam", account=topo.account)
        document = iam.get_role_policy(RoleName=f"sls-observe-{t.DELIVERY}-role", PolicyName="sls-observe-inline")
        policy = document["PolicyDocument"]
        policy = json.loads(urllib.parse.unquote(policy)) if isinstance(policy, str) else policy  # AWS: URL-encoded
        granted = {(action, resource.rsplit(":", 1)[-1]) for st in policy["Statement"]
                   for action in st["Action"] for resource in st["Resource"]}
        assert ("dynamodb:UpdateItem", f"table/{t.BREAKER_TABLE}") in granted
        assert ("sqs:SendMessage", t.BREAKER_RETRY_QUEUE) in granted
        assert ("ssm:GetParameter", f"parameter{t.FAULTS_PARAMETER_PREFIX}{t.DELIVERY}") in granted
    before = {topo.account: inventory(localstack, topo.account) for topo in SCRATCH}
    for topo in SCRATCH:
        assert set(before[topo.account]["functions"]) == {t.NOTIFICATION, t.DELIVERY, t.COURIER}
        assert len(before[topo.account]["apis"]) == 2

    # second run: nothing created, nothing updated, and the AWS APIs agree
    second = recording_progress()
    again = provision_all(localstack.url, settings, endpoints_file=endpoints_file, progress=second, topologies=SCRATCH)
    assert second.counts["created"] == second.counts["updated"] == 0, second.changes
    assert second.counts["unchanged"] == sum(first.counts[k] for k in ("created", "updated", "unchanged"))
    assert "nothing to change" in second.out.getvalue()
    assert again == endpoints
    after = {topo.account: inventory(localstack, topo.account) for topo in SCRATCH}
    for account, kinds in before.items():
        for kind, state in kinds.items():
            assert after[account][kind] == state, f"account {account}: {kind} changed on the second run"

    # teardown: everything goes, the endpoints file too; a second teardown finds nothing
    gone = recording_progress()
    teardown_all(localstack.url, endpoints_file=endpoints_file, progress=gone, topologies=SCRATCH)
    assert gone.counts["deleted"] >= 40 and not endpoints_file.exists()
    for topo in SCRATCH:
        left = inventory(localstack, topo.account)
        assert left["functions"] == {} and left["esms"] == [] and left["queues"] == {}
        assert left["apis"] == {} and left["api_keys"] == [] and left["usage_plans"] == {}
        assert left["buses"] == ["default"] and left["rules"] == {}
        assert left["parameter"] is None and left["secret"] is None
        assert not any(name.startswith("/aws/lambda/") for name, _ in left["log_groups"])
        assert not any(role.startswith("sls-observe-") for role in left["roles"])
        assert t.DELIVERIES_TABLE not in left["tables"]
    twice = recording_progress()
    teardown_all(localstack.url, endpoints_file=endpoints_file, progress=twice, topologies=SCRATCH)
    assert twice.counts["deleted"] == 0 and twice.counts["absent"] > 0
