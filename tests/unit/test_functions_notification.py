"""NotificationFunction: input validation, the event it puts on the bus, loud failure (moto)."""

from __future__ import annotations

import base64
import io
import json
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from tests.support.function_modules import fake_aws_environment, load_function

BUS = "test-bus"


@pytest.fixture
def aws(monkeypatch):
    fake_aws_environment(monkeypatch, EVENTBUS_NAME=BUS)
    with mock_aws():
        yield


@pytest.fixture
def app(aws):
    return load_function("notification")


@pytest.fixture
def output(app, capsys):
    """All JSON lines the function printed: its logs and its EMF metrics."""
    # Powertools' Logger is a process-wide logger per service name, bound to the sys.stdout of
    # its first creation, so its lines are caught here; Metrics prints to the current stdout.
    logs = io.StringIO()
    app.logger.registered_handler.stream = logs

    def lines() -> list[dict]:
        text = logs.getvalue() + capsys.readouterr().out
        logs.seek(0)
        logs.truncate()
        return json_lines(text)

    return lines


@pytest.fixture
def bus_tap(aws):
    """A bus with a catch-all rule into a queue: what reached the bus, as EventBridge delivered it."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name=BUS)
    queue = sqs.create_queue(QueueName="tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tap", EventBusName=BUS, EventPattern=json.dumps({"account": ["123456789012"]}))
    events.put_targets(Rule="tap", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])

    def received() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    return received


def api_event(body: str | None, request_id: str = "req-1", is_base64: bool = False) -> dict:
    return {
        "resource": "/notify",
        "path": "/notify",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "body": body,
        "isBase64Encoded": is_base64,
        "requestContext": {"requestId": request_id, "stage": "Prod", "resourcePath": "/notify"},
    }


def context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="NotificationFunction",
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:NotificationFunction",
        memory_limit_in_mb=1024,
        aws_request_id="lambda-req",
        log_group_name="/aws/lambda/NotificationFunction",
        log_stream_name="s",
        get_remaining_time_in_millis=lambda: 29000,
    )


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ---- parse_order: every kind of malformed order has its own reason ----------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (None, "request body is empty"),
        ("", "request body is empty"),
        ("order_id=1", "request body is not JSON"),
        ("{'order_id': 'x'}", "request body is not JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ('"o-1"', "must be a JSON object, got str"),
        ("42", "must be a JSON object, got int"),
        ("null", "must be a JSON object, got NoneType"),
        ("{}", "order_id is missing"),
        ('{"id": "o-1"}', "order_id is missing"),
        ('{"order_id": ""}', "order_id is empty"),
        ('{"order_id": "   "}', "order_id is empty"),
        ('{"order_id": 17}', "order_id must be a string, got int"),
        ('{"order_id": null}', "order_id must be a string, got NoneType"),
        ('{"order_id": ["o-1"]}', "order_id must be a string, got list"),
    ],
)
def test_parse_order_refuses_malformed_bodies_with_a_reason(app, body, reason):
    with pytest.raises(app.InvalidOrder) as refused:
        app.parse_order(body, False, 16384)
    assert reason in str(refused.value)


def test_parse_order_accepts_an_object_with_order_id_and_anything_else(app):
    assert app.parse_order('{"order_id": "o-1", "qty": 2, "x": {"y": null}}', False, 16384) == {
        "order_id": "o-1", "qty": 2, "x": {"y": None}
    }


def test_parse_order_enforces_the_size_limit_in_bytes(app):
    module = app
    at_limit = json.dumps({"order_id": "o-1", "pad": "x" * (100 - 30)})
    assert len(at_limit.encode()) <= 100
    assert module.parse_order(at_limit, False, 100)["order_id"] == "o-1"
    # multi-byte characters count as the bytes they take on the wire
    too_big = json.dumps({"order_id": "o-1", "pad": "é" * 60}, ensure_ascii=False)
    assert len(too_big) < 100 < len(too_big.encode())
    with pytest.raises(module.InvalidOrder, match=r"is \d+ bytes; the limit is 100 bytes"):
        module.parse_order(too_big, False, 100)


def test_parse_order_refuses_a_body_that_is_not_utf8_and_says_where(app):
    # how API Gateway hands over bytes that are not UTF-8: base64, isBase64Encoded true
    encoded = base64.b64encode(b'{"order_id": "o-\xff"}').decode()
    with pytest.raises(app.InvalidOrder, match=r"not valid UTF-8: byte 0xff at offset 16"):
        app.parse_order(encoded, True, 16384)


def test_parse_order_decodes_base64_bodies(app):
    module = app
    encoded = base64.b64encode(b'{"order_id": "o-9", "qty": 2}').decode()
    assert module.parse_order(encoded, True, 16384) == {"order_id": "o-9", "qty": 2}
    with pytest.raises(module.InvalidOrder, match="not valid base64"):
        module.parse_order("***", True, 16384)


# ---- the handler against a (moto) event bus ------------------------------------------------------


def test_valid_order_goes_on_the_bus_with_correlation_id_and_acceptance_time(app, bus_tap, output):
    response = app.handler(api_event('{"order_id": "o-1", "items": [1, 2]}', request_id="req-42"), context())

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["correlation_id"] == "req-42"
    [event] = bus_tap()
    assert event["detail-type"] == "notify-order"
    assert event["source"] == "NotificationFunction"
    detail = event["detail"]
    assert detail["order_id"] == "o-1" and detail["items"] == [1, 2]
    assert detail["meta_data"]["correlation_id"] == "req-42"
    assert detail["meta_data"]["accepted_at"] == body["accepted_at"]
    assert detail["meta_data"]["accepted_at"].endswith("+00:00")

    lines = output()
    statuses = [(l["message"].get("status"), l.get("correlation_id")) for l in lines
                if isinstance(l.get("message"), dict) and l["message"].get("status")]
    assert statuses == [("START", "req-42"), ("COMPLETED", "req-42")]
    assert all(l["service"] == "notify-handler" for l in lines)
    [emf] = [l for l in lines if "_aws" in l]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ServerlessBoundaryLab"
    assert emf["OrdersAccepted"] == [1.0]


@pytest.mark.parametrize(
    ("body", "reason"),
    [("not json", "not JSON"), ("[]", "JSON object"), ('{"x": 1}', "order_id is missing"),
     ('{"order_id": ""}', "order_id is empty"), ('{"order_id": 5}', "must be a string")],
)
def test_malformed_order_gets_400_with_reason_and_nothing_on_the_bus(app, bus_tap, output, body, reason):
    response = app.handler(api_event(body, request_id="bad-1"), context())

    assert response["statusCode"] == 400
    answer = json.loads(response["body"])
    assert answer["error"] == "invalid order"
    assert reason in answer["reason"]
    assert answer["correlation_id"] == "bad-1"
    assert bus_tap() == []
    lines = output()
    failed = [l for l in lines if isinstance(l.get("message"), dict) and l["message"].get("status") == "FAILED"]
    assert failed and failed[0]["correlation_id"] == "bad-1"
    assert not any("_aws" in l and "OrdersAccepted" in l for l in lines)


def test_oversized_order_is_refused(app, bus_tap, monkeypatch):
    monkeypatch.setenv("ORDER_MAX_BODY_BYTES", "64")
    response = app.handler(api_event(json.dumps({"order_id": "o-1", "note": "x" * 100})), context())
    assert response["statusCode"] == 400
    assert "the limit is 64 bytes" in json.loads(response["body"])["reason"]
    assert bus_tap() == []


def test_failed_entry_fails_loudly(app, monkeypatch, output):
    rejected = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}]}
    monkeypatch.setattr(app.events, "put_events", lambda **_: rejected)

    with pytest.raises(app.EventBusRejected, match="InternalFailure"):
        app.handler(api_event('{"order_id": "o-1"}', request_id="req-x"), context())
    lines = output()
    assert any(isinstance(l.get("message"), dict) and l["message"].get("status") == "FAILED"
               and l["correlation_id"] == "req-x" for l in lines)
    assert not any("OrdersAccepted" in l for l in lines)


def test_keys_of_one_order_do_not_leak_into_the_next_invocation(app, bus_tap, output):
    app.handler(api_event('{"order_id": "first"}', request_id="r1"), context())
    output()
    app.handler(api_event("nope", request_id="r2"), context())
    lines = output()
    assert lines and all(l.get("order_id") is None for l in lines)


def test_event_bus_errors_end_the_story_in_failed_and_raise(app, monkeypatch, output):
    from botocore.exceptions import ClientError

    def unreachable(**_):
        raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no bus"}}, "PutEvents")

    monkeypatch.setattr(app.events, "put_events", unreachable)
    with pytest.raises(ClientError):
        app.handler(api_event('{"order_id": "o-1"}', request_id="req-y"), context())
    lines = output()
    failed = [l for l in lines if isinstance(l.get("message"), dict) and l["message"].get("status") == "FAILED"]
    assert failed and failed[0]["correlation_id"] == "req-y" and "no bus" in failed[0]["message"]["message"]
