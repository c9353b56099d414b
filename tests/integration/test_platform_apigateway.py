"""API Gateway REST (v1) throttling and quotas as AWS enforces them (issue #4, point 1)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from botocore.exceptions import ClientError

from tests.integration.platform_support import deploy_function, lambda_proxy_api, metric

pytestmark = pytest.mark.integration

ACCOUNT = "111111111111"


def mock_api(
    instance, *, key_required: bool, methods: tuple[str, ...] = ("GET",)
) -> tuple[str, str]:
    """A REST API with /orders answering 200 through a MOCK integration; returns (id, base URL)."""
    apigw = instance.client("apigateway", account=ACCOUNT)
    api_id = apigw.create_rest_api(name=f"throttle-{uuid.uuid4().hex[:6]}")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    resource = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="orders")["id"]
    for method in methods:
        apigw.put_method(
            restApiId=api_id,
            resourceId=resource,
            httpMethod=method,
            authorizationType="NONE",
            apiKeyRequired=key_required,
        )
        apigw.put_integration(
            restApiId=api_id,
            resourceId=resource,
            httpMethod=method,
            type="MOCK",
            requestTemplates={"application/json": '{"statusCode": 200}'},
        )
        apigw.put_method_response(
            restApiId=api_id, resourceId=resource, httpMethod=method, statusCode="200"
        )
        apigw.put_integration_response(
            restApiId=api_id,
            resourceId=resource,
            httpMethod=method,
            statusCode="200",
            responseTemplates={"application/json": '{"ok": true}'},
        )
    apigw.create_deployment(restApiId=api_id, stageName="test")
    return api_id, f"{instance.url}/_aws/execute-api/{api_id}/test/orders"


def usage_plan_key(instance, api_id: str, api_stages: list | None = None, **plan: object) -> str:
    apigw = instance.client("apigateway", account=ACCOUNT)
    key = apigw.create_api_key(name=f"key-{uuid.uuid4().hex[:6]}", enabled=True)
    plan_id = apigw.create_usage_plan(
        name=f"plan-{uuid.uuid4().hex[:6]}",
        apiStages=api_stages or [{"apiId": api_id, "stage": "test"}],
        **plan,
    )["id"]
    apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
    return key["value"]


def fire(url: str, rate: float, seconds: float, headers: dict | None = None, method: str = "GET"):
    """Send `rate` requests per second for `seconds`, on schedule; returns the responses."""
    total = int(rate * seconds)
    local = threading.local()
    start = time.monotonic() + 0.2

    def one(i: int) -> tuple[int, str]:
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        response = session.request(method, url, headers=headers or {}, timeout=30)
        return response.status_code, response.text

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(one, range(total)))


def test_usage_plan_throttle_splits_50_per_second_against_rate_10_burst_10(localstack):
    api_id, url = mock_api(localstack, key_required=True)
    key = usage_plan_key(localstack, api_id, throttle={"rateLimit": 10.0, "burstLimit": 10})
    throttled_before = metric(localstack.url, "lab_apigateway_throttled_total", api_id=api_id)

    results = fire(url, rate=50, seconds=4, headers={"x-api-key": key})

    statuses = Counter(status for status, _ in results)
    passed = len(results) - statuses[429]
    print(f"throttle split over 4 s at 50/s: {passed} passed, {statuses[429]} answered 429")
    assert set(statuses) <= {200, 429}, statuses
    assert 45 <= passed <= 55, statuses
    bodies = {body for status, body in results if status == 429}
    assert {json.loads(b)["message"] for b in bodies} == {"Too Many Requests"}
    # the platform metrics saw exactly the 429s this test caused
    throttled = metric(localstack.url, "lab_apigateway_throttled_total", api_id=api_id)
    assert throttled - throttled_before == statuses[429]
    counted = metric(
        localstack.url,
        "lab_apigateway_requests_total",
        api_id=api_id,
        status_class="4xx",
        resource="/orders",
        method="GET",
        stage="test",
    )
    assert counted == statuses[429]


def test_missing_or_wrong_key_still_answers_403(localstack):
    api_id, url = mock_api(localstack, key_required=True)
    usage_plan_key(localstack, api_id, throttle={"rateLimit": 1.0, "burstLimit": 1})
    for headers in ({}, {"x-api-key": "not-a-key"}):
        for _ in range(3):
            response = requests.get(url, headers=headers, timeout=10)
            assert response.status_code == 403, response.text
            assert response.json() == {"message": "Forbidden"}


def test_quota_answers_limit_exceeded_after_the_limit(localstack):
    api_id, url = mock_api(localstack, key_required=True)
    key = usage_plan_key(
        localstack,
        api_id,
        throttle={"rateLimit": 100.0, "burstLimit": 100},
        quota={"limit": 5, "period": "DAY"},
    )
    responses = [requests.get(url, headers={"x-api-key": key}, timeout=10) for _ in range(8)]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 3
    assert responses[-1].json() == {"message": "Limit Exceeded"}
    assert responses[-1].headers["x-amzn-ErrorType"] == "LimitExceededException"


def test_usage_plan_per_method_throttle_overrides_the_plan(localstack):
    api_id, url = mock_api(localstack, key_required=True, methods=("GET", "POST"))
    key = usage_plan_key(
        localstack,
        api_id,
        throttle={"rateLimit": 100.0, "burstLimit": 100},
        api_stages=[
            {
                "apiId": api_id,
                "stage": "test",
                "throttle": {"/orders/GET": {"rateLimit": 0.5, "burstLimit": 2}},
            }
        ],
    )
    headers = {"x-api-key": key}
    get_statuses = [requests.get(url, headers=headers, timeout=10).status_code for _ in range(6)]
    post_statuses = [requests.post(url, headers=headers, timeout=10).status_code for _ in range(6)]
    # GET: a bucket of 2 refilled at 0.5/s (a 3rd token only if the 6 calls took >= 2 s)
    assert get_statuses[:2] == [200, 200] and get_statuses.count(200) in (2, 3), get_statuses
    assert get_statuses.count(429) == 6 - get_statuses.count(200)
    assert post_statuses == [200] * 6  # the plan's 100/s applies to POST


def test_stage_method_settings_throttle_all_clients(localstack):
    api_id, url = mock_api(localstack, key_required=False)
    apigw = localstack.client("apigateway", account=ACCOUNT)
    apigw.update_stage(
        restApiId=api_id,
        stageName="test",
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "0.5"},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "3"},
        ],
    )
    statuses = [requests.get(url, timeout=10).status_code for _ in range(8)]
    assert statuses.count(200) in (3, 4), statuses
    assert statuses.count(429) == 8 - statuses.count(200)


def test_throttled_lambda_integration_is_one_invoke_answered_500(localstack):
    """AWS (Lambda guide, services-apigateway-errors): a rejected invoke is a 500 and "API Gateway
    does not retry any Lambda invocations". LocalStack 4.14 retried it 4 times (5 throttles, 502)."""
    function = deploy_function(
        localstack, ACCOUNT, "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n"
    )
    url = lambda_proxy_api(localstack, function, ACCOUNT)
    assert requests.post(url, data="{}", timeout=30).status_code == 200
    localstack.client("lambda", account=ACCOUNT).put_function_concurrency(
        FunctionName=function, ReservedConcurrentExecutions=0
    )
    before = metric(localstack.url, "lab_lambda_throttles_total", function_name=function)
    answers = [requests.post(url, data="{}", timeout=60) for _ in range(3)]
    assert [a.status_code for a in answers] == [500, 500, 500]
    assert all(a.json() == {"message": "Internal server error"} for a in answers)
    throttles = metric(localstack.url, "lab_lambda_throttles_total", function_name=function) - before
    assert throttles == 3, f"{throttles} throttles counted for 3 calls: the invoke was retried"


ECHO_BODY = """
import json

def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"body": event.get("body"), "base64": event.get("isBase64Encoded")})}
"""


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        # what `curl -d` sends: a form content type around a JSON document
        ("application/x-www-form-urlencoded", '{"order_id":"A-1","note":"a+b&c=d"}'),
        ("application/x-www-form-urlencoded", "a=1&b=2+3&c=%7B"),
        ("text/plain; charset=utf-8", "hello, courier"),
        ("application/json", '{"order_id": "A-2"}'),
    ],
)
def test_the_lambda_proxy_event_carries_the_body_as_sent(localstack, content_type, body):
    """AWS passes a proxy integration the method request's body untouched (API Gateway developer
    guide, "Input format of a Lambda function for proxy integration"): LocalStack 4.14 rebuilt a
    form-encoded body from its parsed form."""
    function = deploy_function(localstack, ACCOUNT, ECHO_BODY, MemorySize=128)
    url = lambda_proxy_api(localstack, function, ACCOUNT)
    response = requests.post(url, data=body.encode(), headers={"Content-Type": content_type}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"body": body, "base64": False}


ECHO_SIZE = """
import json

def handler(event, context):
    body = event.get("body") if isinstance(event, dict) else None
    return {"statusCode": 200, "body": json.dumps({"size": len(body or "")})}
"""
MB = 1024 * 1024


def _post(url: str, size: int) -> requests.Response:
    return requests.post(url, data=b"x" * size, headers={"Content-Type": "text/plain"}, timeout=120)


def test_oversized_bodies_get_what_aws_answers_and_never_reach_the_function(localstack):
    """API Gateway quotas: a REST API payload is at most 10 MB, above it the REQUEST_TOO_LARGE
    gateway response (413). Lambda quotas: a synchronous invocation payload is at most 6 MB; behind a
    Lambda proxy integration that failed invoke is API Gateway's 500 (Lambda developer guide,
    "Handling Lambda errors with an API Gateway API": an invoke error that is not the function's)."""
    function = deploy_function(localstack, ACCOUNT, ECHO_SIZE, MemorySize=256)
    url = lambda_proxy_api(localstack, function, ACCOUNT)
    fits = _post(url, 5 * MB)
    assert fits.status_code == 200 and fits.json() == {"size": 5 * MB}, fits.text[:200]
    before = metric(localstack.url, "lab_lambda_invocations_total", function_name=function)

    too_large_for_api = _post(url, 10 * MB + 1)
    assert too_large_for_api.status_code == 413, too_large_for_api.text[:200]
    assert too_large_for_api.json() == {"message": "Request Too Long"}

    too_large_for_lambda = _post(url, 7 * MB)
    assert too_large_for_lambda.status_code == 500, too_large_for_lambda.text[:200]
    assert too_large_for_lambda.json() == {"message": "Internal server error"}
    assert metric(localstack.url, "lab_lambda_invocations_total", function_name=function) == before

    # the Invoke API itself: AWS's error and message
    lam = localstack.client("lambda", account=ACCOUNT)
    with pytest.raises(ClientError) as refused:
        lam.invoke(FunctionName=function, Payload=json.dumps({"body": "x" * (7 * MB)}).encode())
    error = refused.value.response["Error"]
    assert error["Code"] == "RequestEntityTooLargeException"
    assert error["Message"] == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_without_the_limits_localstack_passes_a_12_mb_body_to_the_function(localstack_with):
    """What the two switches change: LocalStack 4.14 alone runs the function with the whole body."""
    instance = localstack_with(LAB_PATCH_APIGW_PAYLOAD_LIMIT="0", LAB_PATCH_LAMBDA_PAYLOAD_LIMIT="0")
    function = deploy_function(instance, ACCOUNT, ECHO_SIZE, MemorySize=256)
    answer = _post(lambda_proxy_api(instance, function, ACCOUNT), 12 * MB)
    assert answer.status_code == 200 and answer.json() == {"size": 12 * MB}, answer.text[:200]
