"""Asynchronous invocation configured through CloudFormation/SAM behaves as on AWS (issue #18, point 2).

`examples/sam-async` is packaged and deployed with the pinned AWS CLI into its own account, with
LocalStack's async retry base delay at 1 s (LAMBDA_RETRY_BASE_DELAY, the lab's async tests' setting)
so retries take seconds. Measured: a failing event is retried exactly MaximumRetryAttempts times and
reaches the OnFailure queue in AWS's record shape; a succeeding one reaches OnSuccess; invokes
beyond reserved concurrency are throttled and still delivered (throttles do not use retries); a
stack update of the EventInvokeConfig (MaximumRetryAttempts 2 -> 0) takes effect
(LAB_PATCH_CFN_EVENT_INVOKE_CONFIG); SAM's AutoPublishAlias puts the config on the alias, and an
async invoke of the alias follows it.
"""

from __future__ import annotations

import json
import sys
import uuid

import pytest

from lab_kernel.settings import REPO_ROOT
from tests.integration.platform_support import metric, wait_for
from tests.integration.test_platform_cloudformation import run, tool_env

pytestmark = pytest.mark.integration

APP = REPO_ROOT / "examples" / "sam-async"
ACCOUNT = "444444444444"
REGION = "eu-west-1"
STACK = "sam-async"
BUCKET = "sam-async-artifacts"


@pytest.fixture(scope="module")
def instance(localstack_with):
    # retries 1 s, 2 s after a failure (LocalStack: attempt x base delay); the default account limit,
    # so reserved concurrency leaves the unreserved minimum of 100
    return localstack_with(LAMBDA_RETRY_BASE_DELAY="1")


def deploy(instance, packaged, **parameters: str) -> dict[str, str]:
    env = tool_env(instance, ACCOUNT, REGION)
    command = [sys.executable, "-m", "awscli", "cloudformation", "deploy", "--template-file",
               str(packaged), "--stack-name", STACK, "--capabilities", "CAPABILITY_IAM",
               "CAPABILITY_AUTO_EXPAND", "--no-fail-on-empty-changeset"]
    if parameters:
        command += ["--parameter-overrides"] + [f"{k}={v}" for k, v in parameters.items()]
    cfn = instance.client("cloudformation", account=ACCOUNT, region=REGION)
    try:
        run(command, env, cwd=APP)
    except AssertionError:
        events = cfn.describe_stack_events(StackName=STACK)["StackEvents"]
        raise AssertionError("the deploy failed: " + "; ".join(
            f"{e['LogicalResourceId']} {e['ResourceStatus']} {e.get('ResourceStatusReason', '')}"
            for e in events if "FAILED" in e["ResourceStatus"])) from None
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), stack["StackStatus"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


@pytest.fixture(scope="module")
def packaged(instance, tmp_path_factory):
    env = tool_env(instance, ACCOUNT, REGION)
    out = tmp_path_factory.mktemp("sam-async") / "packaged.yaml"
    instance.client("s3", account=ACCOUNT, region=REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    run([sys.executable, "-m", "awscli", "cloudformation", "package", "--template-file",
         "template.yaml", "--s3-bucket", BUCKET, "--output-template-file", str(out)], env, cwd=APP)
    return out


@pytest.fixture(scope="module")
def app(instance, packaged) -> dict[str, str]:
    return deploy(instance, packaged)


class Queue:
    """Records read off a destination queue, kept across reads, found by their event's id."""

    def __init__(self, instance, url: str):
        self.sqs = instance.client("sqs", account=ACCOUNT, region=REGION)
        self.url = url
        self.records: list[dict] = []

    def find(self, event_id: str) -> list[dict]:
        while batch := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=0).get("Messages"):
            for message in batch:
                self.records.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return [r for r in self.records if r.get("requestPayload", {}).get("id") == event_id]


@pytest.fixture(scope="module")
def failures(instance, app) -> Queue:
    return Queue(instance, app["FailureQueueUrl"])


@pytest.fixture(scope="module")
def successes(instance, app) -> Queue:
    return Queue(instance, app["SuccessQueueUrl"])


def invoke(instance, function: str, event: dict, qualifier: str | None = None) -> None:
    lam = instance.client("lambda", account=ACCOUNT, region=REGION)
    extra = {"Qualifier": qualifier} if qualifier else {}
    answer = lam.invoke(FunctionName=function, InvocationType="Event",
                        Payload=json.dumps(event).encode(), **extra)
    assert answer["StatusCode"] == 202, answer


def runs(instance, function: str, event_id: str) -> int:
    """How many times the function ran the event (its handler logs one line per run)."""
    logs = instance.client("logs", account=ACCOUNT, region=REGION)
    count, kwargs = 0, {"logGroupName": f"/aws/lambda/{function}"}
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            count += sum(1 for e in page["events"]
                         if e["message"].startswith("{") and json.loads(e["message"])["id"] == event_id)
            if not page.get("nextToken"):
                return count
            kwargs["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        return 0


def failed_after(instance, failures: Queue, function: str, qualifier: str | None = None) -> tuple[dict, int]:
    """A failing event's OnFailure record and how many times the function ran it."""
    event_id = f"fail-{uuid.uuid4().hex[:8]}"
    invoke(instance, function, {"id": event_id, "fail": True}, qualifier)
    # retries 1 s and 2 s after the failures (LAMBDA_RETRY_BASE_DELAY 1): well within 60 s
    [record] = wait_for(lambda: failures.find(event_id), 60, f"{event_id} on the OnFailure queue",
                        interval=0.5)
    count = record["requestContext"]["approximateInvokeCount"]
    wait_for(lambda: runs(instance, function, event_id) >= count, 20, "the runs' log lines",
             interval=0.5)
    return record, runs(instance, function, event_id)


def test_the_stack_carries_the_event_invoke_config(instance, app):
    lam = instance.client("lambda", account=ACCOUNT, region=REGION)
    config = lam.get_function_event_invoke_config(FunctionName=app["AsyncFunction"])
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 300
    assert config["DestinationConfig"]["OnFailure"]["Destination"].endswith(":" + app[
        "FailureQueueUrl"].rsplit("/", 1)[1])
    aliased = lam.get_function_event_invoke_config(FunctionName=app["AliasedFunction"], Qualifier="live")
    assert aliased["MaximumRetryAttempts"] == 0


def test_a_failing_event_is_retried_then_reaches_the_on_failure_queue(instance, app, failures):
    record, ran = failed_after(instance, failures, app["AsyncFunction"])
    print(f"MaximumRetryAttempts 2: ran {ran} times, OnFailure record {json.dumps(record)[:400]}")
    assert ran == 3  # the first attempt and MaximumRetryAttempts 2 retries
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(f":function:{app['AsyncFunction']}:$LATEST")
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert "failing on purpose" in record["responsePayload"]["errorMessage"]
    assert record["version"] == "1.0" and record["timestamp"]


def test_a_succeeding_event_reaches_the_on_success_queue(instance, app, successes):
    invoke(instance, app["AsyncFunction"], {"id": "ok-1"})
    [record] = wait_for(lambda: successes.find("ok-1"), 30, "ok-1 on the OnSuccess queue", interval=0.5)
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responsePayload"] == {"ok": "ok-1"}


def test_invokes_beyond_reserved_concurrency_are_throttled_and_still_delivered(instance, app, successes):
    """Reserved concurrency 2, 8 events of 1 s at once: throttled, retried (throttles use no retry
    attempt), every one reaches OnSuccess after one run."""
    function = app["AsyncFunction"]
    before = metric(instance.url, "lab_lambda_throttles_total", function_name=function)
    ids = [f"burst-{i}" for i in range(8)]
    for event_id in ids:
        invoke(instance, function, {"id": event_id, "sleep": 1})
    wait_for(lambda: all(successes.find(i) for i in ids), 90, "the 8 events on OnSuccess", interval=1)
    throttles = metric(instance.url, "lab_lambda_throttles_total", function_name=function) - before
    print(f"reserved concurrency 2, 8 async events of 1 s: {throttles:.0f} throttles, all 8 delivered")
    assert throttles > 0
    assert [len(successes.find(i)) for i in ids] == [1] * 8
    assert [successes.find(i)[0]["requestContext"]["approximateInvokeCount"] for i in ids] == [1] * 8


def test_sam_alias_event_invoke_config_applies_to_the_alias(instance, app, failures):
    """SAM puts EventInvokeConfig (MaximumRetryAttempts 0, OnFailure) on the AutoPublishAlias."""
    record, ran = failed_after(instance, failures, app["AliasedFunction"], qualifier="live")
    print(f"alias live, MaximumRetryAttempts 0: ran {ran} times, approximateInvokeCount "
          f"{record['requestContext']['approximateInvokeCount']}")
    assert ran == 1
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1


def test_a_stack_update_of_the_event_invoke_config_takes_effect(instance, packaged, app, failures):
    """Last: it changes the stack. MaximumRetryAttempts 2 -> 0 through a stack update."""
    deploy(instance, packaged, MaximumRetryAttempts="0")
    lam = instance.client("lambda", account=ACCOUNT, region=REGION)
    config = lam.get_function_event_invoke_config(FunctionName=app["AsyncFunction"])
    record, ran = failed_after(instance, failures, app["AsyncFunction"])
    print(f"after the update to MaximumRetryAttempts 0: config says {config['MaximumRetryAttempts']}, "
          f"ran {ran} times, approximateInvokeCount {record['requestContext']['approximateInvokeCount']}")
    assert config["MaximumRetryAttempts"] == 0
    assert config["DestinationConfig"]["OnFailure"]["Destination"]  # the rest of the config stays
    assert ran == 1
    assert record["requestContext"]["approximateInvokeCount"] == 1
