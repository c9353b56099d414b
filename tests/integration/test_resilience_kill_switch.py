"""Kill switch on a real LocalStack: reserved concurrency 0 and back, no order lost behind SQS."""

from __future__ import annotations

import time
import uuid

import pytest

from resilience import kill_switch
from tests.integration.resilience_support import deploy

pytestmark = pytest.mark.integration

ACCOUNT = "222222222222"  # flow-control: orders wait on a queue

SINK = """
import boto3, os
sqs = boto3.client("sqs")

def handler(event, context):
    for record in event["Records"]:
        sqs.send_message(QueueUrl=os.environ["OUT"], MessageBody=record["body"])
"""


def drain(sqs, url: str, want: set[str], timeout: float) -> set[str]:
    got: set[str] = set()
    deadline = time.monotonic() + timeout
    while not want <= got and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", []):
            got.add(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return got


def test_kill_switch_cycle_loses_no_order_and_restores_the_previous_value(localstack, capsys):
    sqs = localstack.client("sqs", account=ACCOUNT)
    lam = localstack.client("lambda", account=ACCOUNT)
    suffix = uuid.uuid4().hex[:6]
    inbox = sqs.create_queue(QueueName=f"ks-in-{suffix}",
                             Attributes={"VisibilityTimeout": "3"})["QueueUrl"]
    out = sqs.create_queue(QueueName=f"ks-out-{suffix}")["QueueUrl"]
    name = deploy(localstack, SINK, ACCOUNT, Timeout=10, MemorySize=256,
                  Environment={"Variables": {"OUT": out}})
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=7)
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn, BatchSize=1)["UUID"]
    cli = ["--topology", "flow-control", "--endpoint-url", localstack.url]

    # the mapping works before the switch
    sqs.send_message(QueueUrl=inbox, MessageBody="warm")
    assert "warm" in drain(sqs, out, {"warm"}, 30)

    assert kill_switch.main(["on", name, *cli]) == 0
    assert kill_switch.main(["on", name, *cli]) == 0  # idempotent: must not store 0 as "previous"
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 0
    assert lam.get_event_source_mapping(UUID=mapping)["State"] in ("Disabled", "Disabling")
    orders = {f"order-{i}" for i in range(10)}
    for order_id in sorted(orders):
        sqs.send_message(QueueUrl=inbox, MessageBody=order_id)
    assert drain(sqs, out, orders, 8) == set()  # killed: nothing is processed ...
    attrs = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["All"])["Attributes"]
    # ... and nothing is lost or even received (no receive counts towards a DLQ): all wait
    assert int(attrs["ApproximateNumberOfMessages"]) == len(orders)
    assert int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0

    assert kill_switch.main(["off", name, *cli]) == 0
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 7
    tags = lam.list_tags(Resource=lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"])
    assert kill_switch.TAG not in tags.get("Tags", {})
    assert lam.get_event_source_mapping(UUID=mapping)["State"] in ("Enabled", "Enabling")
    assert drain(sqs, out, orders, 90) == orders

    output = capsys.readouterr().out
    assert "kill switch ON (reserved concurrency 0; was 7; 1 SQS mapping(s) paused)" in output
    assert "kill switch already on (will restore 7)" in output
    assert "restored to 7; 1 SQS mapping(s) resumed" in output


def test_kill_switch_restores_an_unreserved_function_and_refuses_unknown_functions(localstack, capsys):
    lam = localstack.client("lambda", account=ACCOUNT)
    name = deploy(localstack, "def handler(e, c):\n    return 1\n", ACCOUNT, Timeout=3)
    cli = ["--topology", "flow-control", "--endpoint-url", localstack.url]
    assert kill_switch.main(["on", name, *cli]) == 0
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert kill_switch.main(["off", name, *cli]) == 0
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    assert lam.invoke(FunctionName=name, Payload=b"{}")["StatusCode"] == 200
    with pytest.raises(SystemExit):
        kill_switch.main(["on", "NoSuchFunction", *cli])
    assert "does not exist" in capsys.readouterr().err
