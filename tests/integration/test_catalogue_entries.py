"""The catalogue's fixes on a real LocalStack (issue #17): what each entry asks for is applied.

Every catalogue topology beyond the comparison pair is provisioned by `provision_all` as `make up
TOPOLOGIES=all` does, and then read back from the AWS APIs: the delivery function's reserved
concurrency, the circuit breaker on from the start (its environment, table and retry queue mapped
back), and each account's own concurrency limit. A scratch account with a limit of 2 shows the
per-account limit deciding throttles, beside an account on the process's limit.
"""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from botocore.exceptions import ClientError

from bootstrap import topology as t
from bootstrap.progress import Progress
from bootstrap.provision import provision_all
from lab_kernel import endpoints as contract
from lab_kernel.settings import Settings
from lab_kernel.topologies import catalogue
from labctl.localstack_host import account_limits
from report.story import find, format_story
from tests.integration.platform_support import deploy_function

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXES = tuple(topo for topo in catalogue().topologies if topo.name not in catalogue().pair)
LIMITED_ACCOUNT = "121212121212"  # a scratch account with a limit of its own: 2
UNLIMITED_ACCOUNT = "131313131313"  # a scratch account on the process's limit
ORDER = {"order_id": "o-story", "items": [{"sku": "widget-7", "qty": 2}], "customer": "alice"}
SLEEPER = """
import time

def handler(event, context):
    time.sleep(3)
    return {"ok": True}
"""


def _check_api_destination(instance, topo, entry) -> None:
    """No delivery function: the rule targets an API destination at the courier's rate, which
    sends the order (the event's detail) with the courier's key and dead-letters to the DLQ."""
    lam = instance.client("lambda", account=topo.account)
    with pytest.raises(ClientError) as missing:
        lam.get_function(FunctionName=t.DELIVERY)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException", topo.name
    events = instance.client("events", account=topo.account)
    destination = events.describe_api_destination(Name=t.COURIER_DESTINATION)
    assert destination["InvocationRateLimitPerSecond"] == t.COURIER_DESTINATION_RATE
    assert destination["HttpMethod"] == "POST"
    assert destination["InvocationEndpoint"].rstrip("/").endswith(entry["courier_url"].split("/_aws/", 1)[-1].rstrip("/"))
    connection = events.describe_connection(Name=t.COURIER_CONNECTION)
    assert connection["AuthorizationType"] == "API_KEY"
    assert connection["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyName"] == "x-api-key"
    (target,) = events.list_targets_by_rule(Rule=t.RULE, EventBusName=t.EVENT_BUS)["Targets"]
    assert target["Arn"] == destination["ApiDestinationArn"]
    assert target["InputPath"] == "$.detail"
    dlq_arn = f"arn:aws:sqs:{t.REGION}:{topo.account}:{t.DLQ}"
    assert target["DeadLetterConfig"]["Arn"] == dlq_arn
    assert entry["queues"]["dlq"], entry["queues"]


@pytest.fixture(scope="module")
def instance(localstack_with):
    # the catalogue's per-account limits, as labctl passes them, plus the scratch account's
    limits = ",".join(filter(None, (account_limits(Settings.load()), f"{LIMITED_ACCOUNT}=2")))
    return localstack_with(LAB_ACCOUNT_CONCURRENCY_BY_ACCOUNT=limits)


@pytest.fixture(scope="module")
def endpoints(instance) -> dict:
    """The fixes provisioned as `make up TOPOLOGIES=all` provisions them: the endpoints record."""
    assert FIXES, "the catalogue has no topology beyond the comparison pair"
    return provision_all(instance.url, Settings.load(), endpoints_file=None, topologies=FIXES,
                         progress=Progress(out=io.StringIO()))


def test_each_fix_is_provisioned_as_its_catalogue_entry_says(instance, endpoints):
    settings = Settings.load()
    assert set(endpoints["topologies"]) == {topo.name for topo in FIXES}
    for topo in FIXES:
        lam = instance.client("lambda", account=topo.account)
        expected = topo.account_limit(settings.integer(topo.account_limit_setting, 1))
        if not topo.has_delivery_function:
            _check_api_destination(instance, topo, endpoints["topologies"][topo.name])
            assert lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == expected, topo.name
            continue
        reserved = lam.get_function_concurrency(FunctionName=t.DELIVERY).get("ReservedConcurrentExecutions")
        assert reserved == (topo.delivery.reserved_concurrency or None), topo.name

        limits = lam.get_account_settings()["AccountLimit"]
        assert limits["ConcurrentExecutions"] == expected, topo.name
        assert limits["UnreservedConcurrentExecutions"] == expected - (reserved or 0), topo.name

        variables = lam.get_function_configuration(FunctionName=t.DELIVERY)["Environment"]["Variables"]
        assert (variables.get("CIRCUIT_BREAKER") == "on") == topo.delivery.breaker, topo.name
        sqs = instance.client("sqs", account=topo.account)
        retry_arn = f"arn:aws:sqs:{t.REGION}:{topo.account}:{t.BREAKER_RETRY_QUEUE}"
        mappings = lam.list_event_source_mappings(FunctionName=t.DELIVERY, EventSourceArn=retry_arn)
        assert bool(mappings["EventSourceMappings"]) == topo.delivery.breaker, topo.name
        if not topo.delivery.breaker:
            continue
        assert variables["CB_RETRY_QUEUE_URL"] == sqs.get_queue_url(QueueName=t.BREAKER_RETRY_QUEUE)["QueueUrl"]
        # capped: uncapped, the mapping scales towards the account's limit while parked orders wait
        scaling = mappings["EventSourceMappings"][0].get("ScalingConfig") or {}
        assert scaling.get("MaximumConcurrency") == t.BREAKER_RETRY_MAX_CONCURRENCY, scaling
        # the function starts with the breaker on: its shared circuit item is written at init
        event = {"detail-type": t.DETAIL_TYPE, "source": "lab.test",
                 "detail": {"order_id": "cb-1", "meta_data": {"correlation_id": "cb-1"}}}
        answer = lam.invoke(FunctionName=t.DELIVERY, Payload=json.dumps(event).encode())
        assert "FunctionError" not in answer, answer["Payload"].read()
        item = instance.client("dynamodb", account=topo.account).get_item(
            TableName=t.BREAKER_TABLE, Key={"name": {"S": "courier"}}, ConsistentRead=True)
        assert item.get("Item", {}).get("state", {}).get("S") in ("closed", "open", "half-open"), item


def _throttled(instance, account: str, function: str, calls: int) -> int:
    lam = [instance.client("lambda", account=account) for _ in range(calls)]

    def invoke(i: int) -> bool:
        try:
            lam[i].invoke(FunctionName=function, Payload=b"{}")
            return False
        except ClientError as error:
            if error.response["Error"]["Code"] == "TooManyRequestsException":
                return True
            raise

    with ThreadPoolExecutor(max_workers=calls) as pool:
        return sum(pool.map(invoke, range(calls)))


def test_an_account_limit_of_its_own_decides_throttles(instance):
    limited = deploy_function(instance, LIMITED_ACCOUNT, SLEEPER, Timeout=30)
    unlimited = deploy_function(instance, UNLIMITED_ACCOUNT, SLEEPER, Timeout=30)
    assert instance.client("lambda", account=LIMITED_ACCOUNT).get_account_settings()[
        "AccountLimit"]["ConcurrentExecutions"] == 2
    # 4 calls of 3 s at once: 2 run, 2 are refused in the account limited to 2; none elsewhere
    assert _throttled(instance, LIMITED_ACCOUNT, limited, 4) == 2
    assert _throttled(instance, UNLIMITED_ACCOUNT, unlimited, 4) == 0


def test_each_fix_tells_an_orders_story_to_the_couriers_completed_line(instance, endpoints):
    """`make story` on every fix: the order's lines, found by its correlation_id in the fix's own
    account, reach the courier's COMPLETED line (through a delivery function, or straight from
    the API destination)."""
    lab = contract.parse(endpoints)
    sent = {}
    for topo in FIXES:
        answer = requests.post(lab.topology(topo.name).notify_url, json=dict(ORDER, order_id=f"story-{topo.name}"),
                               timeout=30)
        assert answer.status_code == 200, (topo.name, answer.text)
        sent[topo.name] = answer.json()["correlation_id"]

    def completed(lines: list, service: str) -> bool:
        return any(line.service == service and line.status == "COMPLETED" for line in lines)

    def courier_completed(name: str) -> list | None:
        """The story once it is whole: the courier's COMPLETED line, and the delivery's (logged
        when its invocation ends, after the courier answered) where the fix has a delivery function."""
        found = find([lab.topology(name)], lambda t: instance.client("logs", account=t.account), sent[name])
        lines = found[1] if found else []
        whole = completed(lines, "slow-api") and (
            completed(lines, "delivery-handler") or not catalogue().get(name).has_delivery_function)
        return lines if whole else None

    deadline = time.monotonic() + 150  # the delivery's retries (3-8 s apart, 5 attempts) and log delivery
    stories: dict[str, list] = {}
    while len(stories) < len(sent) and time.monotonic() < deadline:
        for name in sent.keys() - stories.keys():
            if (lines := courier_completed(name)) is not None:
                stories[name] = lines
        time.sleep(2)
    assert stories.keys() == sent.keys(), f"no courier COMPLETED line for {sorted(sent.keys() - stories.keys())}"
    for name, lines in stories.items():
        text = format_story(sent[name], lines, name)
        statuses = text.splitlines()[-1]
        assert statuses.startswith("statuses: notify-handler:START") and "notify-handler:COMPLETED" in statuses, text
        assert "slow-api:COMPLETED" in statuses, text
        # a delivery function, where the fix has one, told its part of the story too
        assert ("delivery-handler:COMPLETED" in statuses) == catalogue().get(name).has_delivery_function, text
