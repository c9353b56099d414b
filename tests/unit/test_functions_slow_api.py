"""SlowApiFunction ("Ace Courier"): profiles, the API route, and the duplicate-counting ledger (moto)."""

from __future__ import annotations

import io
import json
import random
import statistics
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from tests.support.function_modules import fake_aws_environment, load_function

TABLE = "CourierDeliveries"


@pytest.fixture
def aws(monkeypatch):
    fake_aws_environment(monkeypatch, DELIVERIES_TABLE=TABLE)
    monkeypatch.delenv("COURIER_PROFILE", raising=False)
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "correlation_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "correlation_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield


@pytest.fixture
def app(aws):
    return load_function("slow_api")


@pytest.fixture
def logs(app):
    stream = io.StringIO()
    app.logger.registered_handler.stream = stream

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]

    return lines


def always(fails: bool, delay: float = 0.0):
    return lambda module: module.Profile("test", lambda r: fails, lambda r: delay)


def api_event(correlation_id: str | None, body: str | None = '{"order_id": "o-1"}') -> dict:
    headers = {"Content-Type": "application/json", "x-api-key": "k"}
    if correlation_id is not None:
        headers["x-correlation-id"] = correlation_id
    return {
        "resource": "/slow", "path": "/slow", "httpMethod": "POST", "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()}, "body": body, "isBase64Encoded": False,
        "queryStringParameters": None, "pathParameters": None, "stageVariables": None,
        "requestContext": {"requestId": "api-req", "stage": "Prod", "resourcePath": "/slow", "httpMethod": "POST",
                           "path": "/Prod/slow", "identity": {"sourceIp": "127.0.0.1"}},
    }


def context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="SlowApiFunction", function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:SlowApiFunction",
        memory_limit_in_mb=1024, aws_request_id="lambda-req", log_group_name="g", log_stream_name="s",
        get_remaining_time_in_millis=lambda: 29000,
    )


# ---- profiles ------------------------------------------------------------------------------------


def test_seed_profile_fails_20_percent_and_answers_within_2_seconds(app):
    profile, rng = app.PROFILES["seed"], random.Random(7)
    outcomes = [profile.fails(rng) for _ in range(20000)]
    assert 0.19 < sum(outcomes) / len(outcomes) < 0.21
    delays = [profile.delay_seconds(rng) for _ in range(20000)]
    assert 0.0 <= min(delays) and max(delays) <= 2.0
    assert statistics.mean(delays) == pytest.approx(1.0, abs=0.03)


def test_seed_code_profile_reproduces_the_demo_repository(app):
    profile, rng = app.PROFILES["seed-code"], random.Random(7)
    outcomes = [profile.fails(rng) for _ in range(20000)]
    assert sum(outcomes) / len(outcomes) == pytest.approx(20 / 101, abs=0.01)
    delays = {profile.delay_seconds(rng) for _ in range(2000)}
    assert delays == {float(s) for s in range(1, 11)}


def test_default_profile_is_seed_and_unknown_profiles_are_refused(app, monkeypatch):
    assert app.PROFILE.name == "seed"
    monkeypatch.setenv("COURIER_PROFILE", "seed-code")
    assert app.profile_from_env().name == "seed-code"
    monkeypatch.setenv("COURIER_PROFILE", "fast")
    with pytest.raises(ValueError, match="COURIER_PROFILE='fast' is unknown"):
        app.profile_from_env()


# ---- the route -----------------------------------------------------------------------------------


def test_success_answers_200_records_the_delivery_and_logs_the_story(app, logs, monkeypatch):
    monkeypatch.setattr(app, "PROFILE", always(False)(app))

    response = app.handler(api_event("corr-1"), context())

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"correlation_id": "corr-1", "message": "processed", "deliveries": 1}
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"correlation_id": {"S": "corr-1"}})["Item"]
    assert item["deliveries"] == {"N": "1"} and item["order_id"] == {"S": "o-1"}
    story = [(l["message"]["status"], l["correlation_id"]) for l in logs()
             if isinstance(l.get("message"), dict) and "status" in l["message"]]
    assert story == [("START", "corr-1"), ("COMPLETED", "corr-1")]
    assert all(l["service"] == "slow-api" for l in logs())


def test_a_second_delivery_of_the_same_order_is_counted_and_logged(app, logs, monkeypatch):
    monkeypatch.setattr(app, "PROFILE", always(False)(app))
    for _ in range(3):
        response = app.handler(api_event("corr-dup"), context())
    assert json.loads(response["body"])["deliveries"] == 3
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"correlation_id": {"S": "corr-dup"}})["Item"]
    assert item["deliveries"] == {"N": "3"} and "last_delivered_at" in item
    duplicates = [l for l in logs() if isinstance(l.get("message"), dict)
                  and l["message"].get("message") == "duplicate delivery"]
    assert [d["message"]["deliveries"] for d in duplicates] == [2, 3]


def test_planned_failure_is_a_function_error_and_nothing_is_recorded(app, logs, monkeypatch):
    monkeypatch.setattr(app, "PROFILE", always(True)(app))
    with pytest.raises(app.CourierFailure):
        app.handler(api_event("corr-f"), context())
    assert "Item" not in boto3.client("dynamodb").get_item(TableName=TABLE, Key={"correlation_id": {"S": "corr-f"}})
    assert any(isinstance(l.get("message"), dict) and l["message"].get("status") == "FAILED"
               and l["correlation_id"] == "corr-f" for l in logs())


def test_success_takes_the_profile_delay(app, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(app, "PROFILE", always(False, 1.25)(app))
    monkeypatch.setattr(app.time, "sleep", slept.append)
    app.handler(api_event("corr-d"), context())
    assert slept == [1.25]


def test_without_correlation_id_nothing_is_recorded(app, monkeypatch):
    monkeypatch.setattr(app, "PROFILE", always(False)(app))
    response = app.handler(api_event(None), context())
    assert json.loads(response["body"])["correlation_id"] == "not-supplied"
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Count"] == 0


def test_an_api_destinations_call_is_recorded_by_the_orders_own_correlation_id(app, logs, monkeypatch):
    # an EventBridge API destination posts the event's detail and sends no per-event header
    monkeypatch.setattr(app, "PROFILE", always(False)(app))
    body = json.dumps({"order_id": "o-9", "meta_data": {"correlation_id": "corr-9"}})
    response = app.handler(api_event(None, body), context())
    assert json.loads(response["body"])["correlation_id"] == "corr-9"
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"correlation_id": {"S": "corr-9"}})["Item"]
    assert item["order_id"] == {"S": "o-9"}
    # the header, where a caller sends one, wins
    response = app.handler(api_event("corr-h", body), context())
    assert json.loads(response["body"])["correlation_id"] == "corr-h"
    assert all(l["correlation_id"] in ("corr-9", "corr-h") for l in logs() if "correlation_id" in l)


def test_ledger_outage_does_not_fail_the_delivery_and_is_logged(app, logs, monkeypatch):
    monkeypatch.setattr(app, "PROFILE", always(False)(app))
    boto3.client("dynamodb").delete_table(TableName=TABLE)

    first = app.handler(api_event("corr-l1"), context())
    second = app.handler(api_event("corr-l2"), context())

    assert first["statusCode"] == second["statusCode"] == 200
    assert json.loads(first["body"])["deliveries"] is None
    errors = [l["message"] for l in logs() if l.get("level") == "ERROR"]
    assert len(errors) == 2 and all("delivery ledger unavailable" in e["message"] for e in errors)
    assert errors[1]["error"] == "skipped"  # the second call did not pay for the outage again
