"""The seed repository's deploy steps the lab supplies (issue #18 point 4, docs/SEED_APP.md).

A stack of the seed's shape (its logical ids, parameter and secret names, its Resource Group and
Application Insights resources, its region) is deployed through CloudFormation with the SAM
transform; `python -m bootstrap.seed_app configure` then fills the courier endpoint parameter and
the API key secret from it, and a request made as the delivery function makes it (the parameter's
URL, the secret's key) is answered by the courier. The seed itself is not fetched here.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile

import jsonschema
import pytest

from lab_kernel import endpoints as contract
from lab_kernel.settings import REPO_ROOT
from tests.integration.test_platform_cloudformation import tool_env
from tests.support.prometheus import prometheus_factory  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

ACCOUNT = "777777777777"
REGION = "ap-southeast-2"  # the seed's samconfig.toml and delivery code
STACK = "sls-observe"

# answers 200 and logs one Powertools-shaped line with the caller's x-correlation-id, so that
# `report story --account` can find it in whichever function logged it
CODE = """import json


def handler(event, context):
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    print(json.dumps({"level": "INFO", "service": context.function_name, "status": "COMPLETED",
                      "message": "answered", "correlation_id": headers.get("x-correlation-id"),
                      "function_request_id": context.aws_request_id}))
    return {"statusCode": 200, "body": json.dumps({"ok": True})}
"""
TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Transform": "AWS::Serverless-2016-10-31",
    # code from S3, as `sam deploy` gives it (InlineCode needs a `zip` binary in LocalStack 4.14)
    "Globals": {"Function": {"Runtime": "python3.13", "Handler": "index.handler",
                             "CodeUri": "s3://seed-shape-artifacts/code.zip"}},
    "Resources": {
        "NotificationFunction": {"Type": "AWS::Serverless::Function", "Properties": {
            "Events": {"Notify": {"Type": "Api", "Properties": {"Path": "/notify", "Method": "post"}}}}},
        # the seed's delivery function: a rule on its own bus, as on both branches' template.yaml
        "EventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "sls-observe-bus"}},
        "DeliveryFunction": {"Type": "AWS::Serverless::Function", "Properties": {
            "Events": {"NotifyRule": {"Type": "EventBridgeRule", "Properties": {
                "EventBusName": {"Ref": "EventBus"},
                "Pattern": {"account": [{"Fn::Sub": "${AWS::AccountId}"}], "detail-type": ["order-notify"]}}}}}},
        "DeliveryApiParameter": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": "/sls-observe/delivery/endpoint", "Type": "String", "Value": "place-holder"}},
        "DeliveryApiKeySecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {
            "Name": "/sls-observe/delivery/api-key", "SecretString": "api-key-placeholder"}},
        "TheApi": {"Type": "AWS::Serverless::Api", "Properties": {
            "StageName": "Prod", "Auth": {"ApiKeyRequired": True, "UsagePlan": {
                "CreateUsagePlan": "PER_API", "Throttle": {"BurstLimit": 10, "RateLimit": 10}}}}},
        "SlowFunction": {"Type": "AWS::Serverless::Function", "Properties": {
            "Events": {"SlowApi": {"Type": "Api", "Properties": {
                "RestApiId": {"Ref": "TheApi"}, "Path": "/slow", "Method": "post",
                "Auth": {"ApiKeyRequired": True}}}}}},
        "ApplicationResourceGroup": {"Type": "AWS::ResourceGroups::Group", "Properties": {
            "Name": {"Fn::Sub": "ApplicationInsights-SAM-${AWS::StackName}"},
            "ResourceQuery": {"Type": "CLOUDFORMATION_STACK_1_0"}}},
        "ApplicationInsightsMonitoring": {"Type": "AWS::ApplicationInsights::Application",
                                          "DependsOn": "ApplicationResourceGroup", "Properties": {
            "ResourceGroupName": {"Fn::Sub": "ApplicationInsights-SAM-${AWS::StackName}"},
            "AutoConfigurationEnabled": "true"}},
    },
}


def post(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=b'{"order_id": "A-1"}', method="POST",
                                     headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_seed_shaped_stack_deploys_and_configure_fills_endpoint_and_key(localstack, prometheus_factory, tmp_path):
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", CODE)
    s3 = localstack.client("s3", account=ACCOUNT, region=REGION)
    s3.create_bucket(Bucket="seed-shape-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="seed-shape-artifacts", Key="code.zip", Body=code.getvalue())
    cfn = localstack.client("cloudformation", account=ACCOUNT, region=REGION)
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE),
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    deadline = time.monotonic() + 180
    while (status := cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]).endswith("IN_PROGRESS"):
        assert time.monotonic() < deadline, "stack still in progress after 180 s"
        time.sleep(1)
    events = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
              for e in cfn.describe_stack_events(StackName=STACK)["StackEvents"]
              if e["ResourceStatus"].endswith("FAILED")]
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert status == "CREATE_COMPLETE", (stack.get("StackStatusReason"), events)

    env = tool_env(localstack, ACCOUNT, "eu-west-1")  # configure uses the seed's region, not this
    done = subprocess.run([sys.executable, "-m", "bootstrap.seed_app", "configure"], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    target = done.stdout.split("notify target (artillery --target): ")[1].split()[0]

    endpoint = localstack.client("ssm", account=ACCOUNT, region=REGION).get_parameter(
        Name="/sls-observe/delivery/endpoint")["Parameter"]["Value"]
    api_key = localstack.client("secretsmanager", account=ACCOUNT, region=REGION).get_secret_value(
        SecretId="/sls-observe/delivery/api-key")["SecretString"]
    assert endpoint.endswith("/Prod/slow") and api_key != "api-key-placeholder"
    # the parameter holds LocalStack's URL as a function sees it (4566 inside a container): from
    # here, the same path on the instance's own URL
    courier = f"{localstack.url}/_aws/{endpoint.split('/_aws/', 1)[1]}"
    # the stack as an endpoints file in the lab's contract: the load tool's targets come from it
    seed_endpoints = tmp_path / "seed-endpoints.json"
    done = subprocess.run([sys.executable, "-m", "bootstrap.seed_app", "endpoints", "--account",
                           f"no-flow-control={ACCOUNT}", "--out", str(seed_endpoints)], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    written = json.loads(seed_endpoints.read_text())
    schema = json.loads(contract.SCHEMA_FILE.read_text())  # one branch deployed here: names are not required
    jsonschema.validate(written, schema)
    entry = written["topologies"]["no-flow-control"]
    assert entry["account"] == ACCOUNT and entry["region"] == REGION and entry["deliveries_table"] is None
    assert entry["queues"] == {"delivery": None, "dlq": None, "on_failure": None}
    assert "SlowFunction" in entry["functions"]["courier"] and entry["courier_url"].endswith("/Prod/slow")
    assert "DeliveryFunction" in entry["functions"]["delivery"] and "sls-observe-bus" in entry["event_bus"], entry
    from load.targets import load_targets

    [load_target] = load_targets("no-flow-control", seed_endpoints)
    assert post(load_target.notify_url, {}) == 200

    story_id = f"story-{uuid.uuid4()}"
    assert post(courier, {"x-api-key": api_key, "x-correlation-id": story_id}) == 200  # as the delivery function calls it
    assert post(courier, {}) == 403
    assert post(f"{target}/notify", {"x-correlation-id": story_id}) == 200

    # the story of one correlation id across every function of the account, though the lab
    # provisioned none of them (issue #18 point 2): `make story ID=... ACCOUNT=... REGION=...`
    prom = prometheus_factory({"localstack": [urllib.parse.urlparse(localstack.url).netloc]})
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({"localstack_url": localstack.url, "prometheus_url": prom.url, "topologies": {}}))
    deadline = time.monotonic() + 60
    while True:
        story = subprocess.run([sys.executable, "-m", "report", "--endpoints", str(endpoints), "story", story_id,
                                "--account", ACCOUNT, "--region", REGION], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=120)
        if story.returncode == 0 and story.stdout.count("answered") >= 2 or time.monotonic() > deadline:
            break
        time.sleep(2)  # the runtime ships an invocation's log lines after it returns
    print(story.stdout, story.stderr)
    assert story.returncode == 0, story.stderr
    assert f"in account {ACCOUNT} ({REGION})" in story.stdout
    functions = {line.split()[3] for line in story.stdout.splitlines() if "answered" in line}
    assert any("NotificationFunction" in f for f in functions) and any("SlowFunction" in f for f in functions), functions
    wrong = subprocess.run([sys.executable, "-m", "report", "--endpoints", str(endpoints), "story", story_id,
                            "--account", ACCOUNT, "--region", "eu-west-1"], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "has no function in eu-west-1" in wrong.stderr, wrong.stderr

    # the account's report: every function and API of the stack, from the platform's metrics
    prom.wait_for(f'lab_apigateway_requests_total{{account="{ACCOUNT}", status_class="4xx"}}', timeout=60)
    time.sleep(6)  # one more scrape after the last request
    report = subprocess.run([sys.executable, "-m", "report", "--endpoints", str(endpoints), "account",
                             "--account", ACCOUNT, "--start=-10m", "--out", str(tmp_path)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    print(report.stdout, report.stderr)
    assert report.returncode == 0, report.stderr
    rows = {cells[1].strip(): [c.strip() for c in cells[2:-1]] for cells in
            (line.split("|") for line in report.stdout.splitlines() if line.startswith("| ") and "---" not in line)}
    slow = next(v for k, v in rows.items() if "SlowFunction" in k)
    notify = next(v for k, v in rows.items() if "NotificationFunction" in k)
    delivery = next(v for k, v in rows.items() if "DeliveryFunction" in k)
    # the notify function: the load target's request and the story's; the courier: the keyed one
    assert (notify[0], slow[0], delivery[0]) == ("2", "1", "0"), rows
    apis = {k: v for k, v in rows.items() if len(v) == 6 and k != "API"}  # requests, 2xx, 4xx, 5xx, 429, p95
    assert sorted(v[:4] for v in apis.values()) == [["2", "1", "1", "0"], ["2", "2", "0", "0"]], apis
    # the notify API: two 200s; the courier's: the 200 with the key and the 403 without
