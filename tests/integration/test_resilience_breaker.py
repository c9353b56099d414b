"""lab_breaker in real function environments sharing one circuit in a real LocalStack's DynamoDB.

A test courier (HTTP server in this process) fails, then recovers slowly; the function is switched
with `python -m resilience.breaker`, its fallback parks orders on the retry queue, and the redrive
mapping delivers them once the circuit closes.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from resilience import breaker as breaker_cli
from tests.integration.resilience_support import deploy, invoke, logs

# The courier here is a server in the test process on the host's loopback, which a function in a
# container cannot reach: a host LocalStack even where Docker answers.
pytestmark = [pytest.mark.integration, pytest.mark.host_localstack]

ACCOUNT = "222222222222"

CLIENT = """
import json, urllib.request
import boto3
from lab_breaker import CircuitBreakerError, courier_breaker, enabled_by_env, park_order

breaker = courier_breaker() if enabled_by_env() else None
sqs = boto3.client("sqs")

def courier(order):
    request = urllib.request.Request(order["url"], data=json.dumps(order).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status

def deliver(order):
    try:
        status = breaker.call(courier, order) if breaker else courier(order)
    except CircuitBreakerError as error:
        park_order(sqs, breaker.settings.retry_queue_url, order, str(error), delay_seconds=1)
        return {"result": "parked", "reason": str(error)}
    except Exception as error:
        return {"result": "failed", "error": str(error)}
    sqs.send_message(QueueUrl=order["delivered_queue"], MessageBody=order["order_id"])
    return {"result": "delivered", "status": status}

def handler(event, context):
    if "Records" in event:  # parked orders coming back from the retry queue
        results = [deliver(json.loads(r["body"])) for r in event["Records"]]
        if any(r["result"] == "failed" for r in results):
            raise RuntimeError("courier failed; the message stays on the queue")
        return results
    return deliver(event)
"""


class Courier:
    """A courier API whose behaviour the test flips: fail (503), slow (SLOW s then 200), ok."""

    SLOW = 5.0  # wide enough for 5 racing environments to start even on a loaded machine

    def __init__(self) -> None:
        self.mode = "fail"
        self.hits: list[tuple[float, str]] = []
        courier = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                courier.hits.append((time.monotonic(), courier.mode))
                if courier.mode == "slow":
                    time.sleep(courier.SLOW)
                code = 503 if courier.mode == "fail" else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/deliveries"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def courier():
    instance = Courier()
    yield instance
    instance.close()


def circuit(localstack) -> dict:
    item = localstack.client("dynamodb", account=ACCOUNT).get_item(
        TableName="lab-circuit-breaker", Key={"name": {"S": "courier"}}, ConsistentRead=True)
    return {k: next(iter(v.values())) for k, v in item.get("Item", {}).items()}


def test_breaker_opens_probes_once_closes_and_keeps_every_order(localstack, courier):
    sqs = localstack.client("sqs", account=ACCOUNT)
    delivered_queue = sqs.create_queue(QueueName=f"delivered-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    name = deploy(localstack, CLIENT, ACCOUNT, Timeout=20, MemorySize=256)
    assert breaker_cli.main(["on", "--function", name, "--topology", "flow-control",
                             "--endpoint-url", localstack.url, "--timeout", "3"]) == 0
    # the redrive mapping is the one bootstrap gives the catalogue's breaker: capped, and
    # reporting failed items (bootstrap.provision.map_breaker_retry_queue)
    redrive = localstack.client("lambda", account=ACCOUNT).list_event_source_mappings(FunctionName=name)
    mappings = redrive["EventSourceMappings"]
    assert [m.get("ScalingConfig") for m in mappings] == [{"MaximumConcurrency": 10}]
    assert [m.get("FunctionResponseTypes") for m in mappings] == [["ReportBatchItemFailures"]]

    def order(tag: str) -> dict:
        return {"order_id": f"{tag}-{uuid.uuid4().hex[:6]}", "url": courier.url,
                "delivered_queue": delivered_queue}

    kept: list[str] = []  # orders the function answered as delivered or parked

    def send(tag: str) -> dict:
        o = order(tag)
        result = invoke(localstack, name, o, ACCOUNT)[1]
        if result["result"] in ("delivered", "parked"):
            kept.append(o["order_id"])
        return result

    # courier down: 2 failures counted, the 3rd trips the circuit and is parked, not dropped
    assert [send("down")["result"] for _ in range(3)] == ["failed", "failed", "parked"]
    assert circuit(localstack)["state"] == "open"
    hits = len(courier.hits)
    assert send("open")["result"] == "parked"  # OPEN: the courier is not even called
    assert len(courier.hits) == hits

    # courier back but slow; after the 3 s timeout, 5 environments race: one probe only
    courier.mode = "slow"
    # parked orders come back through the redrive mapping meanwhile: one of those may take the
    # probe first, so the window opens when the courier turns slow, not when the race starts
    window_start = time.monotonic()
    time.sleep(3.2)
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda _: send("race"), range(5)))
    probes = [h for h in courier.hits if h[0] >= window_start]
    assert probes, "no half-open probe reached the courier"
    # while the first probe was in flight no other environment called the courier (a later
    # probe, once the lease is free, is allowed: half-open admits one call at a time)
    overlapping = [h for h in probes if h[0] < probes[0][0] + Courier.SLOW]
    assert len(overlapping) == 1, f"{len(overlapping)} concurrent half-open probes: {results}"
    assert sum(r["result"] == "delivered" for r in results) <= 1
    assert all(r["result"] in ("delivered", "parked") for r in results)

    # one more success (success threshold 2) closes it; then parked orders drain by the redrive
    courier.mode = "ok"
    deadline = time.monotonic() + 30
    while circuit(localstack)["state"] != "closed" and time.monotonic() < deadline:
        send("after")
        time.sleep(0.5)
    assert circuit(localstack)["state"] == "closed"

    got: set[str] = set()
    deadline = time.monotonic() + 90
    while not set(kept) <= got and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=delivered_queue, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", []):
            got.add(message["Body"])
    assert len(kept) >= 6 and set(kept) - got == set(), "parked orders lost"

    text = logs(localstack, name, ACCOUNT)
    # each transition announced once across every environment (the conditional-write winner)
    for label in ("OPEN", "HALF_OPEN", "CLOSED"):
        announced = [line for line in text.splitlines() if "CircuitBreaker state" in line]
        assert text.count(f'"message": "CircuitBreaker state: {label}"') == 1, announced
        assert f'"state":"{label}"' in text  # EMF CircuitStateChange{state=...}

    # status shows it; `off` removes the breaker from the path (failures are not parked any more)
    assert breaker_cli.main(["status", "--function", name, "--topology", "flow-control",
                             "--endpoint-url", localstack.url]) == 0
    assert breaker_cli.main(["off", "--function", name, "--topology", "flow-control",
                             "--endpoint-url", localstack.url]) == 0
    courier.mode = "fail"
    assert [send("off")["result"] for _ in range(4)] == ["failed"] * 4
