"""Parsing Powertools lines and formatting one order's story."""

from __future__ import annotations

import json

import pytest

from report.logs import index_statuses, parse_line
from report.story import StoryError, find, format_story, select

CID = "c0ffee00-1111-2222-3333-444455556666"
REQ = "9d3e7c1a-aaaa-bbbb-cccc-111122223333"


def pt(service: str, status: str | None, message: str, cid: str = CID, req: str | None = None, level: str = "INFO") -> str:
    body = {"level": level, "message": message, "service": service,
            "correlation_id": cid, "order_id": "run1-nfc-000001"}
    if status:
        body["status"] = status
    if req:
        body["function_request_id"] = req
    return json.dumps(body)


def test_parse_powertools_and_platform_lines():
    line = parse_line("delivery", 1000, pt("delivery-handler", "START", "Processing Delivery Notification", req=REQ))
    assert (line.service, line.status, line.correlation_id, line.request_id, line.order_id) == (
        "delivery-handler", "START", CID, REQ, "run1-nfc-000001")
    plain = parse_line("delivery", 2000, f"2026-11-23T07:00:29Z {REQ} Task timed out after 29.00 seconds")
    assert plain.correlation_id is None and plain.status is None
    assert plain.message.endswith("Task timed out after 29.00 seconds")
    report = parse_line("delivery", 2001, f"REPORT RequestId: {REQ}\tDuration: 29000.00 ms")
    assert report.request_id == REQ
    dict_message = parse_line("courier", 5, json.dumps({"message": {"a": 1}, "service": "slow-api"}))
    assert dict_message.message == "a=1"


def test_select_keeps_the_order_and_its_invocations_timeouts_in_time_order():
    lines = [
        parse_line("delivery", 3000, pt("delivery-handler", None, "trying API delivery", req=REQ)),
        parse_line("notification", 1000, pt("notify-handler", "START", "Processing Order Notification")),
        parse_line("courier", 3500, pt("slow-api", "FAILED", "random process failure", level="ERROR")),
        parse_line("delivery", 2000, pt("delivery-handler", "START", "Processing Delivery Notification", req=REQ)),
        parse_line("delivery", 33000, f"{REQ} Task timed out after 29.00 seconds"),
        parse_line("delivery", 33001, f"END RequestId: {REQ}"),
        parse_line("delivery", 2500, pt("delivery-handler", "START", "other order", cid="other")),
        parse_line("notification", 1100, pt("notify-handler", "COMPLETED", "order put on the event bus")),
    ]
    chosen = select(lines, CID)
    assert [l.timestamp_ms for l in chosen] == [1000, 1100, 2000, 3000, 3500, 33000]
    text = format_story(CID, chosen, "no-flow-control")
    rows = text.splitlines()
    assert rows[0].startswith(f"story of {CID} in no-flow-control: 6 lines over 32.0 s")
    assert "time (UTC)" in rows[1] and "service" in rows[1] and "status" in rows[1]
    assert "notify-handler" in rows[2] and "START" in rows[2] and "Processing Order Notification" in rows[2]
    assert "slow-api" in rows[6] and "FAILED" in rows[6] and "ERROR" in rows[6]
    assert "Task timed out after 29.00 seconds" in rows[7] and "32.000" in rows[7]
    assert rows[-1] == ("statuses: notify-handler:START -> notify-handler:COMPLETED -> "
                        "delivery-handler:START -> slow-api:FAILED")
    assert "other order" not in text


def test_story_of_nothing_and_bad_ids():
    assert format_story("nope", []) == "no log lines for correlation_id nope"
    with pytest.raises(StoryError, match="make story ID="):
        find([], lambda t: None, "")
    with pytest.raises(StoryError):
        find([], lambda t: None, "bad id with spaces")


def test_status_index_counts_ids_and_lines():
    lines = [
        parse_line("delivery", 10, pt("delivery-handler", "START", "x")),
        parse_line("delivery", 20, pt("delivery-handler", "START", "x")),
        parse_line("delivery", 30, pt("delivery-handler", "COMPLETED", "x")),
        parse_line("delivery", 40, pt("delivery-handler", "START", "x", cid="b")),
    ]
    idx = index_statuses(lines)
    assert idx.get("delivery", "START") == {CID, "b"}
    assert idx.counts[("delivery", "START")] == 3
    assert idx.first[("delivery", "START", CID)] == 10 and idx.last[("delivery", "START", CID)] == 20


def test_run_lines_follow_the_run_id_even_on_lines_without_an_order_id():
    from report.collect import run_lines
    from report.runs import RunWindow
    from pathlib import Path

    def notify(ms: int, cid: str, status: str, order_id: str | None) -> object:
        body = {"service": "notify-handler", "status": status, "message": "m", "correlation_id": cid}
        if order_id:
            body["order_id"] = order_id
        return parse_line("notification", ms, json.dumps(body))

    lines = [
        notify(1000, "a", "START", None),  # logged before the order is parsed
        notify(1001, "a", "COMPLETED", "run7-nfc-000001"),
        notify(1002, "b", "START", None),
        notify(1003, "b", "COMPLETED", "other-nfc-000001"),
    ]
    by_id = run_lines(lines, RunWindow(Path("x"), 0, 10, "smoke", "run7", True))
    assert [(l.correlation_id, l.status) for l in by_id] == [("a", "START"), ("a", "COMPLETED")]
    by_time = run_lines(lines, RunWindow(Path("x"), 1.0015, 1.0016, "smoke", None, True))
    assert len(by_time) == 4  # within the window's one-second margin
    assert run_lines(lines, RunWindow(Path("x"), 100, 200, "smoke", None, True)) == []
    # a notification function that logs no order id at all (the seed's): the window decides
    seed = [notify(1000, "c", "START", None), notify(1001, "c", "COMPLETE", None)]
    assert len(run_lines(seed, RunWindow(Path("x"), 0.5, 1.5, "smoke", "run7", True))) == 2
    assert run_lines(seed, RunWindow(Path("x"), 100, 200, "smoke", "run7", True)) == []


def test_powertools_dict_messages_and_own_timestamps():
    # what Powertools Logger really prints for logger.info({"status": ..., "message": ...})
    raw = json.dumps({
        "level": "INFO", "location": "deliver:155",
        "message": {"status": "COMPLETED", "message": "order delivered", "attempts": 1, "latency_ms": 2304.5},
        "timestamp": "2026-11-23 07:52:29,834+0000", "service": "delivery-handler",
        "function_request_id": REQ, "correlation_id": CID, "order_id": "o-1",
    })
    line = parse_line("delivery", 1795420349840, raw)
    assert (line.status, line.correlation_id, line.level) == ("COMPLETED", CID, "INFO")
    assert line.message == "order delivered attempts=1 latency_ms=2304.5"
    assert line.timestamp_ms == 1795420349834  # logged at, not shipped at (1795420349840)
    emf = parse_line("delivery", 5, json.dumps({"_aws": {"Timestamp": 1}, "service": "delivery-handler", "OrdersDelivered": [1.0]}))
    assert emf.status is None and emf.correlation_id is None


class _Functions:
    """list_functions pages as boto3's paginator yields them."""

    def __init__(self, pages):
        self.pages = pages

    def get_paginator(self, name):
        assert name == "list_functions"
        return self

    def paginate(self):
        return iter(self.pages)


def test_an_account_the_lab_did_not_provision_is_searched_in_every_function():
    from report.story import account_topology

    client = _Functions([
        {"Functions": [{"FunctionName": "sls-observe-NotificationFunction-AbC"}]},
        {"Functions": [{"FunctionName": "custom", "LoggingConfig": {"LogGroup": "/my/own/group"}}]},
    ])
    topology = account_topology("444444444444", "ap-southeast-2", "http://127.0.0.1:4566", client)
    assert topology.log_groups == {"sls-observe-NotificationFunction-AbC": "/aws/lambda/sls-observe-NotificationFunction-AbC",
                                   "custom": "/my/own/group"}
    assert (topology.account, topology.region, topology.name) == ("444444444444", "ap-southeast-2",
                                                                  "account 444444444444 (ap-southeast-2)")
    with pytest.raises(StoryError, match="has no function in eu-west-1"):
        account_topology("444444444444", "eu-west-1", "http://x", _Functions([{"Functions": []}]))
    with pytest.raises(StoryError, match="not an account id"):
        account_topology("4444", "eu-west-1", "http://x", client)


def test_lines_of_functions_outside_the_three_roles_sort_after_them_at_equal_times():
    lines = [
        parse_line("sls-observe-SlowFunction-X", 1000, pt("slow-api", "START", "Slow processing...")),
        parse_line("courier", 1000, pt("slow-api", "START", "x")),
        parse_line("notification", 1000, pt("notify-handler", "START", "y")),
    ]
    assert [l.role for l in select(lines, CID)] == ["notification", "courier", "sls-observe-SlowFunction-X"]


def test_the_seeds_complete_reads_as_completed():
    seed = parse_line("courier", 1, json.dumps({"level": "INFO", "service": "slow-api", "message": {"status": "COMPLETE"},
                                                "correlation_id": CID}))
    assert seed.status == "COMPLETED"
    assert parse_line("courier", 1, pt("slow-api", "completed", "x")).status == "COMPLETED"
    assert parse_line("courier", 1, pt("slow-api", "FAILED", "x")).status == "FAILED"
