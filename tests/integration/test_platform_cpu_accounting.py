"""LocalStack's CPU, accounted per service and thread kind at /_lab/cpu (lab_platform/cpu_accounting.py)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.integration.platform_support import deploy_function

pytestmark = pytest.mark.integration

ACCOUNT = "555555555555"
BUSY = """
def handler(event, context):
    return sum(range(10))
"""


def _cpu(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_lab/cpu", timeout=10) as response:
        return json.load(response)


def test_requests_are_charged_to_their_service_and_the_rest_adds_up(localstack):
    function = deploy_function(localstack, ACCOUNT, BUSY, MemorySize=128)
    lam = localstack.client("lambda", account=ACCOUNT)
    sqs = localstack.client("sqs", account=ACCOUNT)
    before = _cpu(localstack.url)
    for _ in range(20):
        lam.invoke(FunctionName=function, Payload=b"{}")
    for _ in range(30):
        sqs.list_queues()
    after = _cpu(localstack.url)

    def grew(kind: str, service: str) -> float:
        return after[kind].get(service, 0) - before[kind].get(service, 0)

    # at least ours: a poller another test left on the shared LocalStack may add its own calls
    assert grew("requests", "lambda") >= 20
    assert grew("requests", "sqs") >= 30
    assert grew("services", "lambda") > 0 and grew("services", "sqs") > 0
    # every second of the process is somewhere: services + threads + unattributed = user + system
    process = after["process"]["user"] + after["process"]["system"]
    total = sum(after["services"].values()) + sum(after["threads"].values()) + after["unattributed"]
    assert total == pytest.approx(process, rel=0.05)
    # the accounting knows nearly all of it (threads it never saw are the unattributed rest)
    assert after["unattributed"] < 0.5 * process
