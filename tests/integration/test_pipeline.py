"""The order pipeline on a real LocalStack 4.14 with the lab's process executor (issue #5, point 6).

Both topologies are provisioned by `bootstrap.provision.provision_all` into the session's
LocalStack (never the running lab), then real HTTP requests go through API Gateway, EventBridge,
SQS, Lambda and the courier's API key check.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
from datetime import datetime

import pytest
import requests

from bootstrap import topology as t
from bootstrap.packaging import build
from bootstrap.progress import Progress
from bootstrap.provision import provision_all
from bootstrap.resources import (
    FunctionSpec,
    ensure_async_config,
    ensure_function,
    ensure_parameter,
    ensure_queue,
    ensure_role,
    ensure_secret,
)
from bootstrap.aws import Clients
from lab_kernel.settings import Settings
from lab_kernel.topologies import catalogue
from tests.support.localstack import free_port
from tests.integration.test_pipeline_support import log_lines, recording_progress, statuses, story, wait_for

pytestmark = pytest.mark.integration

ORDER = {"order_id": "o-it-1", "items": [{"sku": "widget-7", "qty": 2}], "customer": "alice"}


@pytest.fixture(scope="module")
def lab(localstack, tmp_path_factory) -> dict:
    progress = recording_progress()
    endpoints_file = tmp_path_factory.mktemp("lab") / "endpoints.json"
    endpoints = provision_all(localstack.url, Settings.load(), endpoints_file=endpoints_file, progress=progress)
    assert json.loads(endpoints_file.read_text()) == endpoints
    return endpoints


def client(localstack, topology: dict, service: str, **kw):
    return localstack.client(service, account=topology["account"], **kw)


def ledger_available(localstack, topology: dict) -> bool:
    try:
        client(localstack, topology, "dynamodb").describe_table(TableName=topology["deliveries_table"])
        return True
    except Exception:  # noqa: BLE001 - DynamoDB Local missing (offline) or table absent
        return False


def test_one_order_through_each_topology_tells_its_story(localstack, lab):
    """Same correlation_id at the notification, the delivery and the courier; START -> COMPLETED."""
    sent: dict[str, str] = {}
    for name, topo in lab["topologies"].items():
        response = requests.post(topo["notify_url"], json={**ORDER, "order_id": f"o-{name}"}, timeout=30)
        assert response.status_code == 200, response.text
        sent[name] = response.json()["correlation_id"]
    assert len(set(sent.values())) == 2

    for name, correlation_id in sent.items():
        topo = lab["topologies"][name]
        logs = client(localstack, topo, "logs")
        groups = topo["log_groups"]
        # delivery logs arrive when its invocation ends; retries make that up to ~40 s
        delivery = wait_for(
            f"{name}: delivery COMPLETED for {correlation_id}",
            lambda: (s := story(logs, groups["delivery"], correlation_id)) and s[-1]["message"]["status"] == "COMPLETED" and s,
            timeout=120,
        )
        notification = story(logs, groups["notification"], correlation_id)
        courier = wait_for(f"{name}: courier COMPLETED", lambda: (
            s := story(logs, groups["courier"], correlation_id)) and "COMPLETED" in statuses(s) and s, timeout=20)

        assert statuses(notification) == ["START", "COMPLETED"]
        assert statuses(delivery) == ["START", "COMPLETED"]
        # each courier call is START then FAILED (the planned 20%), the last one COMPLETED
        calls = list(zip(statuses(courier)[0::2], statuses(courier)[1::2]))
        assert len(courier) % 2 == 0 and calls[-1] == ("START", "COMPLETED"), statuses(courier)
        assert all(call == ("START", "FAILED") for call in calls[:-1]), statuses(courier)
        attempts = delivery[-1]["message"]["attempts"]
        assert len(calls) == attempts
        assert {line["service"] for line in notification} == {"notify-handler"}
        assert {line["service"] for line in delivery} == {"delivery-handler"}
        assert {line["service"] for line in courier} == {"slow-api"}
        # the courier answered the delivery for this very order
        assert delivery[-1]["message"]["courier"]["correlation_id"] == correlation_id
        # the story is in time order across the three services
        assert notification[-1]["_at"] <= delivery[0]["_at"] <= courier[0]["_at"]
        assert courier[-1]["_at"] <= delivery[-1]["_at"]
        assert delivery[-1]["message"]["latency_ms"] > 0
        print(f"{name}: {correlation_id} delivered after {attempts} attempt(s), "
              f"{delivery[-1]['message']['latency_ms']:.0f} ms from acceptance; its story:")
        for line in sorted(notification + delivery + courier, key=lambda line: line["_at"]):
            print(f"  {line['timestamp']}  {line['service']:<16} {line['message']['status']:<9} "
                  f"{line['message'].get('message', '')}")
        if ledger_available(localstack, topo):
            item = client(localstack, topo, "dynamodb").get_item(
                TableName=topo["deliveries_table"], Key={"correlation_id": {"S": correlation_id}})["Item"]
            assert int(item["deliveries"]["N"]) >= 1
        else:
            print(f"{name}: DynamoDB unavailable in this LocalStack: ledger not checked")

    # flow-control: the order went through the queue and left it; nothing parked in the DLQ
    flow = lab["topologies"]["flow-control"]
    sqs = client(localstack, flow, "sqs")

    def queue_drained() -> bool:
        attrs = sqs.get_queue_attributes(QueueUrl=flow["queues"]["delivery"], AttributeNames=["All"])["Attributes"]
        return attrs["ApproximateNumberOfMessages"] == attrs["ApproximateNumberOfMessagesNotVisible"] == "0"

    wait_for("flow-control queue drained", queue_drained, timeout=20)
    dlq = sqs.get_queue_attributes(QueueUrl=flow["queues"]["dlq"], AttributeNames=["ApproximateNumberOfMessages"])
    assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "0"


MALFORMED = [
    ("not JSON", "order_id=1", "not JSON"),
    ("a JSON array", '[{"order_id": "o-1"}]', "must be a JSON object, got list"),
    ("a JSON string", '"o-1"', "must be a JSON object, got str"),
    ("no order_id", '{"customer": "alice"}', "order_id is missing"),
    ("empty order_id", '{"order_id": ""}', "order_id is empty"),
    ("blank order_id", '{"order_id": "  "}', "order_id is empty"),
    ("numeric order_id", '{"order_id": 17}', "order_id must be a string, got int"),
    ("null order_id", '{"order_id": null}', "order_id must be a string, got NoneType"),
    ("oversized", json.dumps({"order_id": "o-big", "note": "x" * 17000}), "the limit is 16384 bytes"),
    ("empty body", "", "request body is empty"),
    ("not UTF-8", b'{"order_id": "o-\xff"}', "not valid UTF-8: byte 0xff at offset 16"),
]


@pytest.fixture
def bus_tap(localstack, lab):
    """A test-only catch-all rule on the no-flow-control bus into a queue: what reached the bus."""
    topo = lab["topologies"]["no-flow-control"]
    events, sqs = client(localstack, topo, "events"), client(localstack, topo, "sqs")
    queue_url = sqs.create_queue(QueueName="test-bus-tap")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="test-bus-tap", EventBusName=topo["event_bus"],
                    EventPattern=json.dumps({"source": [topo["functions"]["notification"]]}))
    events.put_targets(Rule="test-bus-tap", EventBusName=topo["event_bus"], Targets=[{"Id": "tap", "Arn": queue_arn}])

    def received(until_correlation_id: str) -> list[dict]:
        seen: list[dict] = []

        def probe() -> bool:
            for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", []):
                seen.append(json.loads(message["Body"]))
            return any(e["detail"]["meta_data"]["correlation_id"] == until_correlation_id for e in seen)

        wait_for("the sentinel order on the bus tap", probe, timeout=30, interval=0.1)
        return seen

    yield received
    events.remove_targets(Rule="test-bus-tap", EventBusName=topo["event_bus"], Ids=["tap"])
    events.delete_rule(Name="test-bus-tap", EventBusName=topo["event_bus"])
    sqs.delete_queue(QueueUrl=queue_url)


def test_each_malformed_order_gets_its_400_and_nothing_reaches_the_bus(localstack, lab, bus_tap):
    topo = lab["topologies"]["no-flow-control"]
    rejected: list[str] = []
    for kind, body, reason in MALFORMED:
        response = requests.post(topo["notify_url"], data=body, headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 400, f"{kind}: {response.status_code} {response.text}"
        answer = response.json()
        assert answer["error"] == "invalid order", kind
        assert reason in answer["reason"], f"{kind}: {answer['reason']!r}"
        rejected.append(answer["correlation_id"])

    # a valid order after the malformed ones: once it is on the tap, anything earlier would be too
    sentinel = requests.post(topo["notify_url"], json={"order_id": "o-sentinel"}, timeout=30)
    assert sentinel.status_code == 200
    sentinel_id = sentinel.json()["correlation_id"]
    on_bus = bus_tap(sentinel_id)
    assert [e["detail"]["meta_data"]["correlation_id"] for e in on_bus] == [sentinel_id]
    assert on_bus[0]["detail-type"] == "notify-order"

    # and each refusal is in the notification's log story: START -> FAILED, with its reason
    logs = client(localstack, topo, "logs")
    for correlation_id in rejected:
        lines = wait_for(f"log story of rejected {correlation_id}",
                         lambda: (s := story(logs, topo["log_groups"]["notification"], correlation_id)) and len(s) >= 2 and s,
                         timeout=15)
        assert statuses(lines) == ["START", "FAILED"]
        assert lines[-1]["message"]["reason"]


def test_an_order_sent_with_curl_d_is_accepted_as_on_aws(localstack, lab, bus_tap):
    """`curl -d` sends application/x-www-form-urlencoded; AWS hands the JSON to the handler as sent."""
    topo = lab["topologies"]["no-flow-control"]
    answer = subprocess.run(
        ["curl", "-sS", "--max-time", "30", "-d", '{"order_id": "o-curl-1", "customer": "curl"}', topo["notify_url"]],
        capture_output=True, text=True, check=True,
    ).stdout
    accepted = json.loads(answer)
    assert accepted.get("correlation_id"), answer
    on_bus = bus_tap(accepted["correlation_id"])
    ours = [e for e in on_bus if e["detail"]["meta_data"]["correlation_id"] == accepted["correlation_id"]]
    assert [e["detail"]["order_id"] for e in ours] == ["o-curl-1"]


def test_courier_without_its_key_is_forbidden(localstack, lab):
    for name, topo in lab["topologies"].items():
        courier = topo["courier_url"]
        headers = {"x-correlation-id": f"no-key-{name}"}
        missing = requests.post(courier, json={"order_id": "o-1"}, headers=headers, timeout=30)
        assert missing.status_code == 403, (name, missing.text)
        assert missing.json() == {"message": "Forbidden"}
        wrong = requests.post(courier, json={"order_id": "o-1"}, headers={**headers, "x-api-key": "not-the-key"}, timeout=30)
        assert wrong.status_code == 403, (name, wrong.text)
        # the key bootstrap stored in Secrets Manager is the one the usage plan accepts
        key = client(localstack, topo, "secretsmanager").get_secret_value(SecretId=topo["api_key_secret"])["SecretString"]
        with_key = requests.post(courier, json={"order_id": "o-1"}, headers={**headers, "x-api-key": key}, timeout=30)
        assert with_key.status_code in (200, 502), (name, with_key.status_code, with_key.text)  # 502: the planned 20%


RETRY_ACCOUNT = "333333333333"


def test_courier_failures_make_delivery_retry_5_times_with_waits_of_3_to_8_seconds(localstack, lab):
    """DeliveryFunction in a scratch account whose stored API key is wrong: every attempt is a 403.

    Only here the function's timeout is 60 s, not 29 s: the seed's policy can wait up to 4 x 8 s,
    so with 29 s the fifth attempt is cut off in about 2% of runs (see lambdas/delivery/README.md);
    this test is about the retry policy, not the timeout.
    """
    courier_endpoint = (
        localstack.client("ssm", account=lab["topologies"]["no-flow-control"]["account"])
        .get_parameter(Name=t.ENDPOINT_PARAMETER)["Parameter"]["Value"]
    )
    c = Clients(localstack.url, RETRY_ACCOUNT)
    p = Progress(out=io.StringIO())
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ssm:GetParameter", "secretsmanager:GetSecretValue"], "Resource": "*"}]}
    role = ensure_role(c, p, "retry", "sls-observe-DeliveryFunction-role", policy)
    ensure_parameter(c, p, "retry", t.ENDPOINT_PARAMETER, courier_endpoint)
    ensure_secret(c, p, "retry", t.API_KEY_SECRET, "a-rotated-key-the-courier-does-not-know")
    ensure_function(c, p, "retry", FunctionSpec(t.DELIVERY, role, {"LOG_LEVEL": "INFO"}, timeout=60), build(t.DELIVERY, p))

    event = {"version": "0", "id": "e-retry", "detail-type": t.DETAIL_TYPE, "source": "NotificationFunction",
             "account": RETRY_ACCOUNT, "time": "2026-11-23T00:00:00Z", "region": "us-east-1", "resources": [],
             "detail": {"order_id": "o-retry", "meta_data": {"correlation_id": "corr-retry",
                                                               "accepted_at": datetime.now().astimezone().isoformat()}}}
    began = time.monotonic()
    response = localstack.client("lambda", account=RETRY_ACCOUNT, read_timeout=90).invoke(
        FunctionName=t.DELIVERY, Payload=json.dumps(event))
    elapsed = time.monotonic() - began
    payload = json.loads(response["Payload"].read())
    assert response.get("FunctionError") == "Unhandled", payload
    assert payload["errorType"] == "HTTPError" and "403" in payload["errorMessage"]

    logs = localstack.client("logs", account=RETRY_ACCOUNT)
    lines = wait_for("delivery log lines", lambda: [
        line for line in log_lines(logs, t.log_group(t.DELIVERY)) if line.get("correlation_id") == "corr-retry"
    ], timeout=15)
    tries = [line for line in lines if isinstance(line.get("message"), dict)
             and line["message"].get("message") == "trying API delivery"]
    assert [line["message"]["attempt"] for line in tries] == [1, 2, 3, 4, 5]
    stamps = [line["_at"] for line in tries]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
    # each gap = tenacity's wait (3 s + uniform 0-5 s, logged) + the 403 round trip, tens of
    # milliseconds when idle; 3 s of slack for a 2-core machine shared by a whole team
    waits = [line["message"]["wait_seconds"] for line in lines
             if isinstance(line.get("message"), dict) and "wait_seconds" in line["message"]]
    assert len(waits) == 4 and all(3.0 <= w <= 8.0 for w in waits), waits
    assert all(wait - 0.01 <= gap <= wait + 3.0 for gap, wait in zip(gaps, waits)), (gaps, waits)
    assert statuses([line for line in lines if isinstance(line.get("message"), dict) and "status" in line["message"]]) == [
        "START", "FAILED"]
    print(f"5 attempts in {elapsed:.1f} s; waits {waits}; measured gaps {[round(g, 2) for g in gaps]}")


def test_an_order_the_bus_does_not_take_fails_loudly(localstack):
    """NotificationFunction that cannot hand the order to EventBridge: a function error, not a 200.

    LocalStack 4.14 accepts PutEvents for a bus that does not exist (AWS reports the entry as
    failed), so the bus is made unreachable instead, with boto3's per-service endpoint variable.
    The FailedEntryCount path itself is covered by the unit tests.
    """
    c = Clients(localstack.url, RETRY_ACCOUNT)
    p = Progress(out=io.StringIO())
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}]}
    role = ensure_role(c, p, "loud", "sls-observe-NotificationFunction-role", policy)
    unreachable = {"EVENTBUS_NAME": t.EVENT_BUS, "AWS_ENDPOINT_URL_EVENTBRIDGE": f"http://127.0.0.1:{free_port()}",
                   "AWS_MAX_ATTEMPTS": "1"}
    ensure_function(c, p, "loud", FunctionSpec(t.NOTIFICATION, role, unreachable), build(t.NOTIFICATION, p))
    event = {"resource": "/notify", "path": "/notify", "httpMethod": "POST", "headers": {},
             "body": json.dumps({"order_id": "o-loud"}), "isBase64Encoded": False,
             "requestContext": {"requestId": "corr-loud", "stage": "Prod", "resourcePath": "/notify"}}
    response = localstack.client("lambda", account=RETRY_ACCOUNT).invoke(
        FunctionName=t.NOTIFICATION, Payload=json.dumps(event))
    payload = json.loads(response["Payload"].read())
    assert response.get("FunctionError") == "Unhandled", payload
    assert payload.get("statusCode") is None  # no 200 (nor any answer) for an order that went nowhere
    logs = localstack.client("logs", account=RETRY_ACCOUNT)
    lines = wait_for("notification story", lambda: (s := story(logs, t.log_group(t.NOTIFICATION), "corr-loud"))
                     and len(s) >= 2 and s, timeout=15)
    assert statuses(lines) == ["START", "FAILED"]


def test_each_topology_is_configured_as_the_seed(localstack, lab):
    """What bootstrap configured, read back through the AWS APIs."""
    nfc, fc = lab["topologies"]["no-flow-control"], lab["topologies"]["flow-control"]
    assert (nfc["account"], fc["account"]) == ("111111111111", "222222222222")
    for topo in (nfc, fc):
        lam = client(localstack, topo, "lambda")
        for fn in topo["functions"].values():
            config = lam.get_function_configuration(FunctionName=fn)
            assert (config["Runtime"], config["Timeout"], config["MemorySize"]) == ("python3.13", 29, 1024), fn
        plan = client(localstack, topo, "apigateway").get_usage_plans()["items"][0]
        assert plan["throttle"] == {"burstLimit": 10, "rateLimit": 10.0}
        ssm = client(localstack, topo, "ssm").get_parameter(Name=topo["endpoint_parameter"])["Parameter"]["Value"]
        assert ssm.endswith(topo["courier_url"].split("/_aws/execute-api/", 1)[1])

    on_failure_arn = client(localstack, nfc, "sqs").get_queue_attributes(
        QueueUrl=nfc["queues"]["on_failure"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    async_config = client(localstack, nfc, "lambda").get_function_event_invoke_config(FunctionName=t.DELIVERY)
    assert async_config["MaximumRetryAttempts"] == 2
    assert async_config["DestinationConfig"]["OnFailure"]["Destination"] == on_failure_arn
    rule_targets = client(localstack, nfc, "events").list_targets_by_rule(Rule=t.RULE, EventBusName=nfc["event_bus"])
    assert [x["Arn"].rsplit(":", 1)[-1] for x in rule_targets["Targets"]] == [t.DELIVERY]

    sqs = client(localstack, fc, "sqs")
    queue = sqs.get_queue_attributes(QueueUrl=fc["queues"]["delivery"], AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=fc["queues"]["dlq"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert queue["VisibilityTimeout"] == "150"
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
    assert json.loads(queue["Policy"])["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    [mapping] = client(localstack, fc, "lambda").list_event_source_mappings(FunctionName=t.DELIVERY)["EventSourceMappings"]
    assert mapping["EventSourceArn"] == queue["QueueArn"]
    assert (mapping["BatchSize"], mapping["ScalingConfig"], mapping["FunctionResponseTypes"]) == (
        1, {"MaximumConcurrency": 10}, ["ReportBatchItemFailures"])
    rule_targets = client(localstack, fc, "events").list_targets_by_rule(Rule=t.RULE, EventBusName=fc["event_bus"])
    assert [x["Arn"] for x in rule_targets["Targets"]] == [queue["QueueArn"]]


def test_a_dropped_asynchronous_event_is_counted_on_the_failure_queue(localstack_with):
    """no-flow-control's async config: 3 invocations (2 retries), then the on-failure queue.

    A LocalStack with 1 s retry delays (LocalStack's default base is 60 s); the DeliveryFunction,
    its on-failure queue and its async config are made by bootstrap's own steps.
    """
    fast = localstack_with(LAMBDA_RETRY_BASE_DELAY="1")
    c = Clients(fast.url, catalogue().get(catalogue().storm).account)
    p = Progress(out=io.StringIO())
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]}
    role = ensure_role(c, p, "drop", "sls-observe-DeliveryFunction-role", policy)
    queue_url, queue_arn = ensure_queue(c, p, "drop", t.ON_FAILURE_QUEUE, {"MessageRetentionPeriod": "1209600"})
    ensure_function(c, p, "drop", FunctionSpec(t.DELIVERY, role, {"LOG_LEVEL": "INFO"}), build(t.DELIVERY, p))
    ensure_async_config(c, p, "drop", t.DELIVERY, t.ASYNC_MAX_RETRIES, t.ASYNC_MAX_EVENT_AGE, queue_arn)

    poison = {"not": "an EventBridge event", "marker": "drop-1"}  # the handler refuses it at once
    fast.client("lambda", account=c.account).invoke(
        FunctionName=t.DELIVERY, InvocationType="Event", Payload=json.dumps(poison))
    sqs = fast.client("sqs", account=c.account)
    [message] = wait_for("the dropped event on the on-failure queue", lambda: sqs.receive_message(
        QueueUrl=queue_url, WaitTimeSeconds=2).get("Messages"), timeout=90, interval=0.5)
    record = json.loads(message["Body"])
    assert record["requestPayload"] == poison
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
