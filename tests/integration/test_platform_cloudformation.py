"""A SAM app deployed through CloudFormation gets AWS's limits (issue #18, items 1, 2 and 6).

`examples/sam-limits` is packaged and deployed with the pinned AWS CLI (`aws cloudformation
package` + `deploy`, the README's commands) into its own account and region, then each limit it
declares is measured: the usage plan from `AWS::Serverless::Api` Auth (429 beyond rate and burst),
an SQS mapping's ScalingConfig MaximumConcurrency, and a function's ReservedConcurrentExecutions
under a mapping allowed more, whose throttled messages reach the DLQ (maxReceiveCount 1). The SAM
CLI's own `sam build` + `sam deploy` is exercised last, from its pinned `.venv-sam`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from lab_kernel.settings import REPO_ROOT
from tests.integration.platform_support import metric, peak_overlap, wait_for
from tests.integration.test_platform_apigateway import fire

pytestmark = pytest.mark.integration

APP = REPO_ROOT / "examples" / "sam-limits"
ACCOUNT = "333333333333"  # an account of the user's choosing: LocalStack takes it from the key id
REGION = "eu-west-1"
STACK = "sam-limits"
SAM = REPO_ROOT / ".venv-sam" / "bin" / "sam"


def tool_env(instance, account: str, region: str) -> dict[str, str]:
    """The local-endpoint convention every AWS tool reads: endpoint, a 12-digit key id, region."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=instance.url,
        AWS_ACCESS_KEY_ID=account,
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=region,
        SAM_CLI_TELEMETRY="0",
    )
    return env


def run(command: list[str], env: dict[str, str], cwd: Path = APP) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def outputs(instance, account: str, region: str) -> dict[str, str]:
    cfn = instance.client("cloudformation", account=account, region=region)
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), stack["StackStatus"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


@pytest.fixture(scope="module")
def app(localstack, tmp_path_factory) -> dict[str, str]:
    """examples/sam-limits, deployed with `aws cloudformation package` and `deploy`."""
    env = tool_env(localstack, ACCOUNT, REGION)
    aws = [sys.executable, "-m", "awscli"]
    packaged = tmp_path_factory.mktemp("sam-limits") / "packaged.yaml"
    localstack.client("s3", account=ACCOUNT, region=REGION).create_bucket(
        Bucket="sam-limits-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    run(aws + ["cloudformation", "package", "--template-file", "template.yaml",
               "--s3-bucket", "sam-limits-artifacts", "--output-template-file", str(packaged)], env)
    run(aws + ["cloudformation", "deploy", "--template-file", str(packaged), "--stack-name", STACK,
               "--capabilities", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"], env)
    return outputs(localstack, ACCOUNT, REGION)


def send(instance, url: str, bodies: list[dict]) -> None:
    sqs = instance.client("sqs", account=ACCOUNT, region=REGION)
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": json.dumps(b)} for i, b in enumerate(chunk)],
        )


def logged(instance, function: str) -> list[dict]:
    """The JSON lines examples/sam-limits/src/work.py logged, one per message it ran."""
    logs = instance.client("logs", account=ACCOUNT, region=REGION)
    found, kwargs = [], {"logGroupName": f"/aws/lambda/{function}", "filterPattern": "span"}
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            found += [json.loads(e["message"]) for e in page["events"] if e["message"].startswith("{")]
            if not page.get("nextToken"):
                return found
            kwargs["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        return []


def test_the_stack_carries_the_templates_limits(localstack, app):
    lam = localstack.client("lambda", account=ACCOUNT, region=REGION)
    reserved = lam.get_function_concurrency(FunctionName=app["ThrottledFunction"])
    assert reserved.get("ReservedConcurrentExecutions") == 1, reserved
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(
        FunctionName=app["CappedFunction"])
    mappings = lam.list_event_source_mappings(FunctionName=app["CappedFunction"])
    assert [m["ScalingConfig"] for m in mappings["EventSourceMappings"]] == [{"MaximumConcurrency": 2}]


def test_the_sam_usage_plan_answers_429_beyond_its_rate_and_burst(localstack, app):
    apigw = localstack.client("apigateway", account=ACCOUNT, region=REGION)
    key = apigw.get_api_key(apiKey=app["ApiKeyId"], includeValue=True)["value"]
    url = f"{localstack.url}/_aws/execute-api/{app['ApiId']}/v1/ping"
    assert fire(url, rate=2, seconds=1)[0][0] == 403  # no key: Forbidden, as before any plan

    results = fire(url, rate=20, seconds=3, headers={"x-api-key": key})

    statuses = Counter(status for status, _ in results)
    print(f"SAM usage plan rate 5 / burst 5, 20 requests/s for 3 s: {statuses[200]} answered, "
          f"{statuses[429]} answered 429")
    assert set(statuses) <= {200, 429}, results[:3]
    # a token bucket of 5 plus 5 a second, over 3 s: about 20 of the 60 get through
    assert 15 <= statuses[200] <= 25, statuses
    assert {json.loads(body)["message"] for status, body in results if status == 429} == {
        "Too Many Requests"}


def test_the_mapping_never_runs_more_than_its_maximum_concurrency(localstack, app):
    send(localstack, app["CappedQueueUrl"], [{"sleep": 1, "id": i} for i in range(10)])
    lines = wait_for(lambda: (found := logged(localstack, app["CappedFunction"])) and
                     len(found) >= 10 and found, 90, "10 invocations", interval=0.5)
    found = [tuple(line["span"]) for line in lines]
    print(f"SAM SQS mapping, MaximumConcurrency 2, 10 messages of 1 s: peak {peak_overlap(found)}")
    assert len(found) == 10
    assert peak_overlap(found) == 2


def test_reserved_concurrency_throttles_the_mapping_and_messages_reach_the_dlq(localstack, app):
    """The mapping (MaximumConcurrency 5) does not account for reserved concurrency 1: its other
    batches are throttled until their visibility timeout (10 s) and, received again, pass
    maxReceiveCount 1."""
    sqs = localstack.client("sqs", account=ACCOUNT, region=REGION)
    function = app["ThrottledFunction"]
    throttles_before = metric(localstack.url, "lab_lambda_throttles_total", function_name=function)
    sent = set(range(20))
    send(localstack, app["ThrottledQueueUrl"], [{"sleep": 2, "id": i} for i in sorted(sent)])

    def drained() -> bool:
        attributes = sqs.get_queue_attributes(
            QueueUrl=app["ThrottledQueueUrl"], AttributeNames=["All"])["Attributes"]
        return attributes["ApproximateNumberOfMessages"] == attributes[
            "ApproximateNumberOfMessagesNotVisible"] == "0"

    wait_for(drained, 180, "the throttled queue to drain", interval=1)
    dead: set[int] = set()
    while batch := sqs.receive_message(QueueUrl=app["DeadLetterQueueUrl"], MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1).get("Messages"):
        dead |= {json.loads(m["Body"])["id"] for m in batch}
    ran = wait_for(lambda: (lines := logged(localstack, function)) and len(lines) >= len(sent - dead)
                   and lines, 30, "the log lines of the messages that ran", interval=1)
    ran_ids = {line["id"] for line in ran}
    throttles = metric(localstack.url, "lab_lambda_throttles_total", function_name=function)
    peak = peak_overlap([tuple(line["span"]) for line in ran])
    print(f"SAM reserved concurrency 1 under MaximumConcurrency 5, 20 messages of 2 s, visibility "
          f"10 s, maxReceiveCount 1: {len(ran_ids)} ran (peak {peak}), {len(dead)} dead-lettered "
          f"({len(ran_ids & dead)} of them had run: invoked just before their visibility timeout "
          f"ended), {throttles - throttles_before:.0f} throttles")
    assert peak == 1
    assert throttles > throttles_before
    assert dead, "no throttled message reached the DLQ"
    assert ran_ids | dead == sent  # none lost: each message either ran or was dead-lettered


def test_sam_cli_builds_and_deploys_into_the_lab(localstack, tmp_path):
    if not SAM.exists():
        pytest.skip("the SAM CLI is not installed: run `make sam-cli`")
    env = tool_env(localstack, "666666666666", "us-east-1")
    # `sam build` needs the runtime's interpreter (python3.13) on PATH: .venv-sam's own
    env["PATH"] = f"{SAM.parent}{os.pathsep}{env['PATH']}"
    build = tmp_path / "build"
    run([str(SAM), "build", "--build-dir", str(build)], env)
    run([str(SAM), "deploy", "--template-file", str(build / "template.yaml"), "--stack-name", STACK,
         "--resolve-s3", "--capabilities", "CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND",
         "--no-confirm-changeset", "--no-fail-on-empty-changeset"], env)
    deployed = outputs(localstack, "666666666666", "us-east-1")
    lam = localstack.client("lambda", account="666666666666", region="us-east-1")
    assert lam.get_function_concurrency(FunctionName=deployed["ThrottledFunction"])[
        "ReservedConcurrentExecutions"] == 1
    apigw = localstack.client("apigateway", account="666666666666", region="us-east-1")
    key = apigw.get_api_key(apiKey=deployed["ApiKeyId"], includeValue=True)["value"]
    url = f"{localstack.url}/_aws/execute-api/{deployed['ApiId']}/v1/ping"
    [(status, body)] = fire(url, rate=1, seconds=1, headers={"x-api-key": key})
    assert (status, json.loads(body)) == (200, {"pong": True})
