"""collect(): the ledger's evidence rules, on stub AWS clients fed with given records."""

from __future__ import annotations

import json
from pathlib import Path

from botocore.exceptions import ClientError

from report.collect import collect
from lab_kernel.endpoints import parse
from report.runs import RunWindow

NOW = 1_800_000_000.0


def line(service: str, status: str, cid: str, order_id: str | None = None) -> str:
    body = {"service": service, "status": status, "message": "m", "correlation_id": cid}
    if order_id:
        body["order_id"] = order_id
    return json.dumps(body)


class Logs:
    class exceptions:  # noqa: N801 - boto3's shape
        ResourceNotFoundException = KeyError

    def __init__(self, groups: dict[str, list[tuple[float, str]]]) -> None:
        self.groups = groups

    def filter_log_events(self, logGroupName: str, **_: object) -> dict:  # noqa: N803
        return {"events": [{"timestamp": int(t * 1000), "message": m} for t, m in self.groups.get(logGroupName, [])]}


class Dynamo:
    def __init__(self, items: list[dict] | None) -> None:
        self.items = items

    def scan(self, **_: object) -> dict:
        if self.items is None:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "down"}}, "Scan")
        return {"Items": self.items}


class Sqs:
    def __init__(self, bodies: dict[str, list[str]]) -> None:
        self.bodies = bodies
        self.released = 0

    def get_queue_attributes(self, QueueUrl: str, **_: object) -> dict:  # noqa: N803
        return {"Attributes": {"ApproximateNumberOfMessages": str(len(self.bodies.get(QueueUrl, []))),
                               "ApproximateNumberOfMessagesNotVisible": "0", "ApproximateNumberOfMessagesDelayed": "0"}}

    def receive_message(self, QueueUrl: str, **_: object) -> dict:  # noqa: N803
        bodies, self.bodies[QueueUrl] = self.bodies.get(QueueUrl, []), []
        return {"Messages": [{"MessageId": f"m{i}", "ReceiptHandle": f"h{i}", "Body": b} for i, b in enumerate(bodies)]}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list) -> None:  # noqa: N803
        self.released += len(Entries)


ENDPOINTS = parse({"localstack_url": "http://x", "topologies": {"flow-control": {
    "account": "222222222222", "queues": {"delivery": "q/delivery", "dlq": "q/dlq"}}}})
TOPOLOGY = ENDPOINTS.topology("flow-control")
N, D, C = "/aws/lambda/NotificationFunction", "/aws/lambda/DeliveryFunction", "/aws/lambda/SlowApiFunction"


def accepted(t: float, cid: str) -> list[tuple[float, str]]:
    return [(t, line("notify-handler", "START", cid)), (t + 0.1, line("notify-handler", "COMPLETED", cid, f"run1-fc-{cid}"))]


def run(logs: dict, items: list[dict] | None, queues: dict[str, list[str]]):
    sqs = Sqs(queues)
    clients = {"logs": Logs(logs), "dynamodb": Dynamo(items), "sqs": sqs}
    window = RunWindow(Path("r"), NOW - 1000, NOW - 400, "smoke", "run1", True)
    return collect(TOPOLOGY, window, lambda _t, service: clients[service], settle_seconds=240, now=NOW), sqs


def envelope(cid: str) -> str:
    return json.dumps({"detail": {"order_id": "o", "meta_data": {"correlation_id": cid}}})


def test_every_bucket_from_its_own_evidence():
    logs = {
        N: accepted(NOW - 900, "delivered") + accepted(NOW - 900, "dead") + accepted(NOW - 900, "queued")
        + accepted(NOW - 900, "retrying") + accepted(NOW - 900, "gone") + accepted(NOW - 100, "fresh"),
        D: [(NOW - 890, line("delivery-handler", "START", "delivered")),
            (NOW - 889, line("delivery-handler", "COMPLETED", "delivered")),
            (NOW - 60, line("delivery-handler", "FAILED", "retrying"))],
    }
    items = [{"correlation_id": {"S": "delivered"}, "deliveries": {"N": "2"}}]
    r, sqs = run(logs, items, {"q/dlq": [envelope("dead")], "q/delivery": [envelope("queued")]})
    b = r.ledger.buckets
    assert b["delivered"] == {"delivered"}
    assert b["dead_lettered"] == {"dead"}
    # queued: seen in the queue; retrying: failed 60 s ago; fresh: accepted 100 s ago;
    # gone: accepted 900 s ago, never touched, but the topology was busy 60 s ago: undecidable
    assert b["in_flight"] == {"queued", "retrying", "fresh", "gone"}
    assert not r.ledger.lost_decidable and b["lost"] == set()
    assert r.duplicates == {"delivered": 2}
    assert sqs.released == 2  # both peeked messages released at once
    assert r.actual_success == 1 / 6


def test_lost_once_everything_is_quiet():
    logs = {N: accepted(NOW - 900, "delivered") + accepted(NOW - 900, "gone"),
            D: [(NOW - 889, line("delivery-handler", "COMPLETED", "delivered"))]}
    r, _ = run(logs, [{"correlation_id": {"S": "delivered"}, "deliveries": {"N": "1"}}], {})
    assert r.ledger.lost_decidable
    assert r.ledger.buckets["lost"] == {"gone"}
    assert r.duplicates == {}


def test_an_order_the_breaker_parked_is_in_flight_until_it_starts_again():
    # parked 600 s ago with a delay of up to 900 s: on the retry queue, where no receive sees it
    logs = {N: accepted(NOW - 900, "parked") + accepted(NOW - 900, "parked-then-gone") + accepted(NOW - 900, "done"),
            D: [(NOW - 890, line("delivery-handler", "START", "parked")),
                (NOW - 600, line("delivery-handler", "PARKED", "parked")),
                (NOW - 890, line("delivery-handler", "PARKED", "parked-then-gone")),
                (NOW - 600, line("delivery-handler", "START", "parked-then-gone")),
                (NOW - 889, line("delivery-handler", "COMPLETED", "done"))]}
    r, _ = run(logs, [{"correlation_id": {"S": "done"}, "deliveries": {"N": "1"}}], {})
    assert r.ledger.lost_decidable
    assert r.ledger.buckets["in_flight"] == {"parked"}
    assert r.ledger.buckets["lost"] == {"parked-then-gone"}  # started again 600 s ago, then nothing


def test_courier_logs_stand_in_for_an_unreadable_table():
    logs = {N: accepted(NOW - 900, "a") + accepted(NOW - 900, "b"),
            C: [(NOW - 880, line("slow-api", "COMPLETED", "a")), (NOW - 870, line("slow-api", "COMPLETED", "a"))]}
    r, _ = run(logs, None, {})
    assert r.ledger.buckets["delivered"] == {"a"}  # the courier processed it, twice
    assert r.duplicates == {"a": 2}
    assert r.ledger.buckets["lost"] == {"b"}
    assert any("unreadable" in n for n in r.notes)


def test_an_app_without_a_courier_table_is_read_from_its_logs_in_its_own_words():
    """The seed's own functions: no courier table, no order id in the notify lines, "COMPLETE"."""
    seed = parse({"localstack_url": "http://x", "topologies": {"no-flow-control": {
        "account": "444444444444", "deliveries_table": None, "queues": {}}}}).topology("no-flow-control")
    logs = {N: [(NOW - 900, line("notify", "START", "a")), (NOW - 899, line("notify", "COMPLETE", "a")),
                (NOW - 900, line("notify", "START", "b")), (NOW - 899, line("notify", "COMPLETE", "b"))],
            D: [(NOW - 880, line("delivery", "COMPLETE", "a"))],
            C: [(NOW - 881, line("slow-api", "COMPLETE", "a"))]}
    clients = {"logs": Logs(logs), "dynamodb": None, "sqs": Sqs({})}  # a scan would fail loudly
    window = RunWindow(Path("r"), NOW - 1000, NOW - 400, "seed-code", "run1", True)
    r = collect(seed, window, lambda _t, service: clients[service], settle_seconds=240, now=NOW)
    assert r.ledger.buckets["delivered"] == {"a"} and r.ledger.buckets["lost"] == {"b"}
    assert any("no courier table" in n for n in r.notes)


def test_without_a_delivery_function_the_courier_marks_an_order_delivered():
    """api-destination: the bus calls the courier itself, so the article's measure and the
    latency count the courier's COMPLETED lines (the delivery log group stays empty)."""
    from lab_kernel.topologies import catalogue

    name = next(t.name for t in catalogue().topologies if not t.has_delivery_function)
    destination = parse({"localstack_url": "http://x", "topologies": {name: {
        "account": "101010101010", "queues": {"dlq": "q/dlq"}}}}).topology(name)
    logs = {N: accepted(NOW - 900, "a") + accepted(NOW - 900, "b") + accepted(NOW - 900, "c"),
            C: [(NOW - 890, line("slow-api", "FAILED", "a")), (NOW - 880, line("slow-api", "COMPLETED", "a"))]}
    clients = {"logs": Logs(logs), "dynamodb": Dynamo([{"correlation_id": {"S": "a"}, "deliveries": {"N": "1"}}]),
               "sqs": Sqs({"q/dlq": [json.dumps({"order_id": "o", "meta_data": {"correlation_id": "b"}})]})}
    window = RunWindow(Path("r"), NOW - 1000, NOW - 400, "smoke", "run1", True)
    r = collect(destination, window, lambda _t, service: clients[service], settle_seconds=240, now=NOW)
    assert r.completed == {"a"} and r.actual_success == 1 / 3
    assert r.latency.count == 1 and 19 < r.latency.p50 < 21
    assert r.ledger.buckets["delivered"] == {"a"} and r.ledger.buckets["dead_lettered"] == {"b"}
    assert r.ledger.buckets["lost"] == {"c"}
