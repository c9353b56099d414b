"""Helpers shared by the platform-fidelity integration tests (issue #4)."""

from __future__ import annotations

import io
import json
import re
import textwrap
import time
import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)

# One LocalStack for the async tests: account limit 100, async retries after 1 s (not 60 s).
ASYNC_SETTINGS = {"LAMBDA_LIMITS_CONCURRENT_EXECUTIONS": "100", "LAMBDA_RETRY_BASE_DELAY": "1"}

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples of `GET /_lab/metrics` as (name, labels, value)."""
    response = requests.get(f"{url}/_lab/metrics", timeout=10)
    response.raise_for_status()
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = []
    for line in response.text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not Prometheus exposition: {line!r}"
        labels = dict(_LABEL.findall(match.group(3) or ""))
        samples.append((match.group(1), labels, float(match.group(4))))
    return samples


def metric(url: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when none)."""
    return sum(
        value
        for sample, sample_labels, value in scrape(url)
        if sample == name and all(sample_labels.get(k) == v for k, v in labels.items())
    )


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def zip_code(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", textwrap.dedent(source))
    return buffer.getvalue()


def role_arn(instance, account: str) -> str:
    iam = instance.client("iam", account=account)
    try:
        return iam.get_role(RoleName="lab-platform-test")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="lab-platform-test", AssumeRolePolicyDocument=TRUST_POLICY)[
            "Role"
        ]["Arn"]


def deploy_function(instance, account: str, source: str, **config) -> str:
    name = f"lab-{uuid.uuid4().hex[:10]}"
    lam = instance.client("lambda", account=account)
    lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Handler="app.handler",
        Role=role_arn(instance, account),
        Code={"ZipFile": zip_code(source)},
        **config,
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120}
    )
    return name


def lambda_proxy_api(instance, function: str, account: str) -> str:
    """A REST API whose POST /invoke is a Lambda proxy integration of `function` (bootstrap's own
    provisioning, quietly); returns its URL."""
    from bootstrap.aws import Clients
    from bootstrap.progress import Progress
    from bootstrap.resources import ensure_lambda_proxy_api
    from bootstrap.topology import api_url

    c = Clients(instance.url, account)
    arn = c.awslambda.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    api_id = ensure_lambda_proxy_api(c, Progress(out=io.StringIO()), "test", f"proxy-{function}", "test API",
                                     "invoke", function, arn, api_key_required=False)
    return api_url(instance.url, api_id, "invoke")


# A handler that sleeps and logs one JSON line with its start and end (wall clock).
SPAN_HANDLER = """
import json, time

def handler(event, context):
    records = event.get("Records")
    payload = json.loads(records[0]["body"]) if records else event
    started = time.time()
    time.sleep(float(payload.get("sleep", 0)))
    print(json.dumps({"span": [started, time.time()], "tag": payload.get("tag", "")}))
    return {"ok": True}
"""


def logged_records(instance, account: str, function: str, key: str) -> list[dict]:
    """The JSON lines a test handler printed with `key` in them, from the function's logs (none
    while its log group does not exist yet)."""
    logs = instance.client("logs", account=account)
    found = []
    kwargs = {"logGroupName": f"/aws/lambda/{function}", "filterPattern": key}
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            for event in page["events"]:
                message = event["message"].strip()
                if message.startswith("{") and f'"{key}"' in message:
                    found.append(json.loads(message))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return found


def spans(instance, account: str, function: str, tag: str = "") -> list[tuple[float, float]]:
    """(start, end) of the invocations of a SPAN_HANDLER function with `tag`, from its logs."""
    return [tuple(r["span"]) for r in logged_records(instance, account, function, "span") if r.get("tag", "") == tag]


def warm_up(instance, account: str, function: str, environments: int) -> None:
    """Start `environments` execution environments (concurrent sync invokes, tagged "warm"), so a
    test's timing measures the platform's scaling and not this busy machine's cold starts."""
    import boto3
    from botocore.config import Config

    lam = boto3.client(
        "lambda",
        endpoint_url=instance.url,
        region_name="us-east-1",
        aws_access_key_id=account,
        aws_secret_access_key="test",
        config=Config(
            retries={"max_attempts": 0}, read_timeout=120, max_pool_connections=environments
        ),
    )
    payload = json.dumps({"sleep": 1.5, "tag": "warm"})
    with ThreadPoolExecutor(max_workers=environments) as pool:
        results = list(
            pool.map(
                lambda _: lam.invoke(FunctionName=function, Payload=payload), range(environments)
            )
        )
    failed = [r for r in results if r.get("FunctionError") or r["StatusCode"] != 200]
    assert not failed, f"warm-up invokes failed: {failed[:2]}"


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """Largest number of intervals running at one instant."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
