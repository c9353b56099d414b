"""DeliveryFunction with CIRCUIT_BREAKER=on (moto DynamoDB/SQS/SSM, courier mocked): the breaker
stops tenacity's retries, parks orders as envelopes the function itself can take back, and
delivers the parked order once the courier answers again."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import boto3
import pytest
import responses
from moto import mock_aws

from tests.support.function_modules import fake_aws_environment, load_function

COURIER = "http://courier.test/_aws/execute-api/abc/Prod/slow"


@pytest.fixture
def app(monkeypatch):
    fake_aws_environment(monkeypatch, CIRCUIT_BREAKER="on", CB_TABLE="lab-circuit-breaker", CB_TIMEOUT_SECONDS="1")
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    with mock_aws():
        boto3.client("ssm").put_parameter(Name="/sls-observe/delivery/endpoint", Value=COURIER, Type="String")
        boto3.client("secretsmanager").create_secret(Name="/sls-observe/delivery/api-key", SecretString="k")
        boto3.client("dynamodb").create_table(
            TableName="lab-circuit-breaker", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}])
        queue = boto3.client("sqs").create_queue(QueueName="lab-delivery-retry")["QueueUrl"]
        monkeypatch.setenv("CB_RETRY_QUEUE_URL", queue)
        module = load_function("delivery")
        module.parameters.clear_caches()
        module.try_api_delivery.retry.sleep = lambda seconds: None
        module.queue = queue
        yield module
        module.parameters.clear_caches()


def context():
    return SimpleNamespace(
        function_name="DeliveryFunction", function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:DeliveryFunction",
        memory_limit_in_mb=1024, aws_request_id="req", log_group_name="g", log_stream_name="s",
        get_remaining_time_in_millis=lambda: 29000)


def event(order_id: str) -> dict:
    return {"detail-type": "notify-order", "source": "NotificationFunction",
            "detail": {"order_id": order_id, "meta_data": {"correlation_id": f"c-{order_id}"}}}


@responses.activate
def test_open_circuit_stops_retries_and_parks_the_order_for_redelivery(app):
    responses.add(responses.POST, COURIER, status=503)
    # 3 failed attempts trip the breaker inside the first order's tenacity loop: it is parked
    # instead of being retried 5 times
    result = app.handler(event("o-1"), context())
    assert result["parked"] is True
    assert len(responses.calls) == 3
    assert app.breaker.current_state == "open"
    # open: the next order is parked without calling the courier
    assert app.handler(event("o-2"), context())["parked"] is True
    assert len(responses.calls) == 3

    sqs = boto3.client("sqs")
    # parked for at least the reset timeout (back when the circuit may be half-open), at most
    # twice it on a first park (lab_breaker.park_delay)
    assert "Messages" not in sqs.receive_message(QueueUrl=app.queue)
    messages: list[dict] = []
    deadline = time.monotonic() + 2.5
    while len(messages) < 2 and time.monotonic() < deadline:
        messages += sqs.receive_message(QueueUrl=app.queue, MaxNumberOfMessages=10).get("Messages", [])
        time.sleep(0.1)
    parked = [json.loads(m["Body"]) for m in messages]
    assert sorted(p["detail"]["order_id"] for p in parked) == ["o-1", "o-2"]
    assert [p["parks"] for p in parked] == [1, 1], "the envelope counts the parks, so the next waits longer"

    # courier back and circuit forced closed: the parked envelope, coming back as an SQS record
    # through the redrive mapping, is delivered by the unchanged record handler
    responses.replace(responses.POST, COURIER, status=200, json={"message": "processed"})
    app.breaker.storage.force("closed")
    record = {"messageId": "m-1", "receiptHandle": "r", "body": messages[0]["Body"],
              "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
              "md5OfBody": "x", "eventSource": "aws:sqs",
              "eventSourceARN": "arn:aws:sqs:us-east-1:222222222222:lab-delivery-retry",
              "awsRegion": "us-east-1"}
    assert app.handler({"Records": [record]}, context()) == {"batchItemFailures": []}
    assert len(responses.calls) == 4
