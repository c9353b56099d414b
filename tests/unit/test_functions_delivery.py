"""DeliveryFunction: both event shapes, the seed's retry policy, metrics, cached configuration.

SSM and Secrets Manager are moto; the courier is a `responses` mock; tenacity's sleep is
replaced by a recorder, so the waits it chose are asserted without waiting them.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import boto3
import pytest
import requests
import responses
from moto import mock_aws

from tests.support.function_modules import fake_aws_environment, load_function

COURIER = "http://courier.test/_aws/execute-api/abc/Prod/slow"
KEY = "key-123"


@pytest.fixture
def app(monkeypatch):
    fake_aws_environment(monkeypatch)
    with mock_aws():
        boto3.client("ssm").put_parameter(Name="/sls-observe/delivery/endpoint", Value=COURIER, Type="String")
        boto3.client("secretsmanager").create_secret(Name="/sls-observe/delivery/api-key", SecretString=KEY)
        module = load_function("delivery")
        # Powertools Parameters caches process-wide: every test starts from SSM itself.
        module.parameters.clear_caches()
        waits: list[float] = []
        module.try_api_delivery.retry.sleep = waits.append
        module.waits = waits
        yield module
        module.parameters.clear_caches()


@pytest.fixture
def output(app, capsys):
    logs = io.StringIO()
    app.logger.registered_handler.stream = logs

    def lines() -> list[dict]:
        text = logs.getvalue() + capsys.readouterr().out
        logs.seek(0)
        logs.truncate()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    return lines


def context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="DeliveryFunction", function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:DeliveryFunction",
        memory_limit_in_mb=1024, aws_request_id="lambda-req", log_group_name="g", log_stream_name="s",
        get_remaining_time_in_millis=lambda: 29000,
    )


def detail(correlation_id: str = "corr-1", order_id: str = "o-1", accepted_ago_ms: float = 1500) -> dict:
    accepted = datetime.now(UTC) - timedelta(milliseconds=accepted_ago_ms)
    return {
        "order_id": order_id,
        "items": [{"sku": "w-1", "qty": 2}],
        "meta_data": {"correlation_id": correlation_id, "accepted_at": accepted.isoformat(timespec="milliseconds")},
    }


def eventbridge_event(d: dict) -> dict:
    return {"version": "0", "id": "ev-1", "detail-type": "notify-order", "source": "NotificationFunction",
            "account": "111111111111", "time": "2026-11-23T07:00:00Z", "region": "us-east-1",
            "resources": [], "detail": d}


def sqs_event(*details: dict) -> dict:
    return {"Records": [
        {"messageId": f"m-{i}", "receiptHandle": "r", "body": json.dumps(eventbridge_event(d)),
         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "x",
         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:222222222222:q", "awsRegion": "us-east-1"}
        for i, d in enumerate(details)
    ]}


def statuses(lines: list[dict]) -> list[tuple[str, str]]:
    return [(l["message"]["status"], l.get("correlation_id")) for l in lines
            if isinstance(l.get("message"), dict) and "status" in l["message"]]


def metrics(lines: list[dict]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in lines:
        if "_aws" not in line:
            continue
        assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ServerlessBoundaryLab"
        for definition in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            values = line[definition["Name"]]
            totals[definition["Name"]] = totals.get(definition["Name"], 0) + sum(
                values if isinstance(values, list) else [values]
            )
    return totals


# ---- pure logic ----------------------------------------------------------------------------------


def test_acceptance_latency_in_milliseconds(app):
    now = datetime(2026, 11, 23, 7, 0, 1, 250000, tzinfo=UTC)
    assert app.acceptance_latency_ms("2026-11-23T07:00:00.000+00:00", now) == pytest.approx(1250.0)
    assert app.acceptance_latency_ms("2026-11-23T07:00:00", now) == pytest.approx(1250.0)  # naive = UTC
    assert app.acceptance_latency_ms(None, now) is None
    assert app.acceptance_latency_ms("yesterday", now) is None


def test_the_seed_retry_policy_and_an_explicit_timeout(app):
    retrying = app.try_api_delivery.retry
    assert retrying.stop.max_attempt_number == 5
    assert retrying.reraise is True
    connect, read = app.HTTP_TIMEOUT_SECONDS
    assert 0 < connect < read < 29


# ---- EventBridge path ----------------------------------------------------------------------------


@responses.activate
def test_eventbridge_order_is_delivered_without_meta_data(app, output):
    responses.post(COURIER, json={"correlation_id": "corr-1", "message": "processed", "deliveries": 1})

    answer = app.handler(eventbridge_event(detail(accepted_ago_ms=2000)), context())

    assert answer["message"] == "processed"
    [call] = responses.calls
    assert call.request.headers["x-api-key"] == KEY
    assert call.request.headers["x-correlation-id"] == "corr-1"
    assert json.loads(call.request.body) == {"order_id": "o-1", "items": [{"sku": "w-1", "qty": 2}]}
    lines = output()
    assert statuses(lines) == [("START", "corr-1"), ("COMPLETED", "corr-1")]
    assert all(l["service"] == "delivery-handler" for l in lines if "level" in l)
    totals = metrics(lines)
    assert totals["DeliveryAttempts"] == 1 and totals["OrdersDelivered"] == 1
    assert "DeliveryFailed" not in totals and "CourierThrottled" not in totals
    assert 2000 <= totals["DeliveryLatency"] < 10000
    assert app.waits == []


@responses.activate
def test_failures_are_retried_five_times_with_waits_of_3_to_8_seconds(app, output):
    responses.post(COURIER, status=502, json={"message": "Internal server error"})

    with pytest.raises(requests.HTTPError, match="502"):
        app.handler(eventbridge_event(detail(correlation_id="corr-r")), context())

    assert len(responses.calls) == 5
    assert len(app.waits) == 4
    assert all(3.0 <= w <= 8.0 for w in app.waits), app.waits
    lines = output()
    assert statuses(lines) == [("START", "corr-r"), ("FAILED", "corr-r")]
    attempts = [l["message"]["attempt"] for l in lines
                if isinstance(l.get("message"), dict) and l["message"].get("message") == "trying API delivery"]
    assert attempts == [1, 2, 3, 4, 5]
    logged_waits = [l["message"]["wait_seconds"] for l in lines
                    if isinstance(l.get("message"), dict) and "wait_seconds" in l["message"]]
    assert logged_waits == [round(w, 3) for w in app.waits]
    totals = metrics(lines)
    assert totals["DeliveryAttempts"] == 5 and totals["DeliveryFailed"] == 1
    assert "OrdersDelivered" not in totals


@responses.activate
def test_courier_throttling_is_counted_and_retried(app, output):
    responses.post(COURIER, status=429, json={"message": "Too Many Requests"})
    responses.post(COURIER, status=429, json={"message": "Too Many Requests"})
    responses.post(COURIER, json={"message": "processed"})

    app.handler(eventbridge_event(detail()), context())

    totals = metrics(output())
    assert totals["CourierThrottled"] == 2
    assert totals["DeliveryAttempts"] == 3 and totals["OrdersDelivered"] == 1
    assert len(app.waits) == 2


@responses.activate
def test_transport_errors_are_retried_too(app, output):
    responses.post(COURIER, body=requests.ConnectTimeout("courier unreachable"))
    responses.post(COURIER, json={"message": "processed"})

    app.handler(eventbridge_event(detail()), context())
    assert metrics(output())["OrdersDelivered"] == 1


def test_unknown_event_shape_is_refused(app):
    with pytest.raises(ValueError, match="expected an EventBridge event or an SQS batch"):
        app.handler({"hello": "world"}, context())


# ---- SQS path ------------------------------------------------------------------------------------


@responses.activate
def test_sqs_batch_reports_only_the_failed_record(app, output):
    def courier(request):
        if request.headers["x-correlation-id"] == "bad":
            return 500, {}, "{}"
        return 200, {}, json.dumps({"message": "processed"})

    responses.add_callback(responses.POST, COURIER, callback=courier)

    answer = app.handler(sqs_event(detail("good"), detail("bad"), detail("good-2")), context())

    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    lines = output()
    assert ("COMPLETED", "good") in statuses(lines) and ("COMPLETED", "good-2") in statuses(lines)
    assert ("FAILED", "bad") in statuses(lines)
    totals = metrics(lines)
    assert totals["OrdersDelivered"] == 2 and totals["DeliveryFailed"] == 1


@responses.activate
def test_sqs_batch_of_one_failed_order_is_a_function_error(app):
    responses.post(COURIER, status=500)
    with pytest.raises(Exception, match="All records failed"):
        app.handler(sqs_event(detail("only")), context())


# ---- configuration through Powertools Parameters ---------------------------------------------------


@responses.activate
def test_endpoint_and_key_are_cached_for_max_age(app):
    responses.post(COURIER, json={"message": "processed"})
    app.handler(eventbridge_event(detail()), context())
    # a rotation within max_age is not seen (cached), as the README states ...
    boto3.client("secretsmanager").put_secret_value(SecretId="/sls-observe/delivery/api-key", SecretString="new")
    app.handler(eventbridge_event(detail()), context())
    assert [c.request.headers["x-api-key"] for c in responses.calls] == [KEY, KEY]
    assert app.PARAMETERS_MAX_AGE_SECONDS == 300
    # ... and is once the cache expires
    app.parameters.clear_caches()
    app.handler(eventbridge_event(detail()), context())
    assert responses.calls[-1].request.headers["x-api-key"] == "new"


def test_missing_configuration_fails_the_delivery(app, output):
    boto3.client("ssm").delete_parameter(Name="/sls-observe/delivery/endpoint")
    with pytest.raises(app.parameters.exceptions.GetParameterError):
        app.handler(eventbridge_event(detail("cfg")), context())
    lines = output()
    assert ("FAILED", "cfg") in statuses(lines)
    assert metrics(lines)["DeliveryFailed"] == 1
