"""lab_faults: validation, mode order, each mode's effect, and the SSM-driven decorator (moto)."""

from __future__ import annotations

import json
import os
import random
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest


from lab_faults import MODE_ORDER, FaultConfigError, InjectedFault, inject_faults, parse_config
from lab_faults.injector import correlation_id_of, plan, run_with_faults
from lab_faults.modes import DenylistedConnection


def cfg(**faults):
    return parse_config({"faults": faults})


# ---- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"faults": {"explode": {"rate": 1}}}, "unknown fault mode 'explode'"),
        ({"faults": {"latency": {"rate": 1.5, "min_ms": 1}}}, "rate = 1.5 is out of range"),
        ({"faults": {"latency": {"rate": -0.1, "min_ms": 1}}}, "rate = -0.1 is out of range"),
        ({"faults": {"latency": {"min_ms": 300, "max_ms": 100}}}, "max_ms (100) is below min_ms"),
        ({"faults": {"denylist": {"hosts": ["(a+)+$"]}}}, "pathological regular expression"),
        ({"faults": {"denylist": {"hosts": ["(x|x)*y"]}}}, "pathological regular expression"),
        ({"faults": {"denylist": {"hosts": ["(unclosed"]}}}, "invalid regular expression"),
        ({"faults": {"exception": {"match": [{"path": "a", "regex": "(.*)*"}]}}}, "pathological"),
        ({"faults": {"status_code": {"status_code": 700}}}, "status_code = 700 is out of range"),
        ({"faults": {"disk_space": {"mb": 100000}}}, "mb = 100000 is out of range"),
        ({"faults": {"corruption": {"style": "melt"}}}, "style must be one of"),
        ({"faults": {"crash": {"how": "segfault"}}}, "how must be one of ['kill', 'exit']"),
        ({"faults": {"crash": {"when": "during"}}}, "when must be one of ['before', 'after']"),
        ({"faults": {"latency": {"min_ms": 1, "typo": 2}}}, "unknown key(s) ['typo']"),
        ({"faults": {}, "expires_at": "tomorrow"}, "is not ISO 8601"),
        ({"faults": {}, "expires_at": "2030-01-01T00:00:00"}, "needs a timezone"),
        ("{not json", "not valid JSON"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_config_is_rejected_with_a_clear_message(document, fragment):
    with pytest.raises(FaultConfigError) as info:
        parse_config(document)
    assert fragment in str(info.value)


def test_modes_run_in_the_documented_order_whatever_the_document_order():
    config = cfg(
        corruption={},
        latency={"min_ms": 1, "max_ms": 2},
        status_code={},
        denylist={"hosts": ["x"]},
        exception={},
        timeout={},
        disk_space={"mb": 1},
        crash={},
    )
    assert tuple(m.mode for m in config.modes) == MODE_ORDER
    assert MODE_ORDER.index("denylist") < MODE_ORDER.index("latency") < MODE_ORDER.index(
        "exception"
    ) < MODE_ORDER.index("corruption")


def test_expired_modes_and_documents_revert_by_themselves():
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    config = cfg(latency={"min_ms": 1, "expires_at": past}, exception={"expires_at": future})
    assert [m.mode for m in config.active_modes(datetime.now(UTC))] == ["exception"]
    whole = parse_config({"expires_at": past, "faults": {"exception": {}}})
    assert whole.active_modes(datetime.now(UTC)) == []
    assert parse_config({"enabled": False, "faults": {"exception": {}}}).active_modes(
        datetime.now(UTC)
    ) == []


def test_match_rules_select_events_by_field():
    config = cfg(
        exception={"match": [{"path": "body.customer", "regex": "^vip-"}]},
        latency={"min_ms": 0, "match": [{"path": "detail.kind", "equals": "express"}]},
    )
    rng = random.Random(1)
    api_event = {"body": json.dumps({"customer": "vip-7"})}
    assert [m.mode for m in plan(config, api_event, rng)] == ["exception"]
    assert [m.mode for m in plan(config, {"body": '{"customer": "bob"}'}, rng)] == []
    assert [m.mode for m in plan(config, {"detail": {"kind": "express"}}, rng)] == ["latency"]


def test_rate_is_a_probability_rolled_per_mode():
    config = cfg(exception={"rate": 0.3}, latency={"rate": 0.0, "min_ms": 0})
    rng = random.Random(42)
    fired = [plan(config, {}, rng) for _ in range(2000)]
    share = sum(1 for f in fired if f) / len(fired)
    assert 0.25 < share < 0.35
    assert all(m.mode == "exception" for f in fired for m in f)


def test_correlation_id_is_found_in_the_lab_event_shapes():
    assert correlation_id_of({"headers": {"X-Correlation-Id": "h1"}}) == "h1"
    assert correlation_id_of({"body": json.dumps({"correlation_id": "b1"})}) == "b1"
    assert correlation_id_of({"detail": {"correlation_id": "d1"}}) == "d1"
    assert correlation_id_of({"Records": [{"body": json.dumps({"correlation_id": "s1"})}]}) == "s1"
    assert correlation_id_of({"nothing": 1}) is None


# ---- each mode's effect -------------------------------------------------------------------------


def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"ok": True, "payload": "x" * 40})}


def fire(config, event=None, context=None, h=handler):
    rng = random.Random(0)
    return run_with_faults(h, event or {}, context, list(config.modes), rng)


def test_latency_delays_within_bounds(capsys):
    start = time.monotonic()
    assert fire(cfg(latency={"min_ms": 120, "max_ms": 160}))["statusCode"] == 200
    elapsed = time.monotonic() - start
    assert 0.12 <= elapsed < 0.4
    out = capsys.readouterr().out
    assert '"fault_mode": "latency"' in out and '"FaultInjected"' in out and '"mode":"latency"' in out


def test_exception_raises_an_injected_fault_and_skips_the_handler(capsys):
    calls = []
    with pytest.raises(InjectedFault, match="boom"):
        fire(cfg(exception={"message": "boom"}), {"correlation_id": "c-9"}, h=lambda e, c: calls.append(1))
    assert calls == []
    assert '"correlation_id": "c-9"' in capsys.readouterr().out


def test_status_code_answers_instead_of_the_handler():
    response = fire(cfg(status_code={"status_code": 503}))
    assert response["statusCode"] == 503
    assert response["headers"]["X-Lab-Fault"] == "status_code"


def test_corruption_breaks_the_body_but_keeps_the_status():
    for style in ("truncate", "garble", "empty"):
        response = fire(cfg(corruption={"style": style}))
        assert response["statusCode"] == 200
        with pytest.raises(ValueError):
            json.loads(response["body"])


def _crash_in_a_child(config, marker: Path) -> int:
    """Fire `config` in a forked child whose handler touches `marker`; return its wait status."""
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        try:
            fire(config, h=lambda e, c: marker.touch() or {"statusCode": 200, "body": "{}"})
        finally:
            os._exit(0)  # reached only if the crash did not happen
    return os.waitpid(pid, 0)[1]


@pytest.mark.parametrize(("how", "when"), [("kill", "before"), ("exit", "before"), ("kill", "after")])
def test_crash_ends_the_process_before_or_after_the_handler(tmp_path, how, when):
    marker = tmp_path / "handler-ran"
    status = _crash_in_a_child(cfg(crash={"how": how, "when": when}), marker)
    if how == "kill":
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9  # as the kernel's OOM kill
    else:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1
    assert marker.exists() is (when == "after")  # after: the work was done, its result lost


class _Context:
    def __init__(self, ms):
        self.ms = ms

    def get_remaining_time_in_millis(self):
        return self.ms


def test_timeout_sleeps_past_the_remaining_time():
    start = time.monotonic()
    fire(cfg(timeout={}), context=_Context(200))
    assert time.monotonic() - start >= 1.2


def test_disk_space_holds_the_space_during_the_handler_only():
    seen = {}

    def h(event, context):
        files = [p for p in Path(tempfile.gettempdir()).glob("lab-faults-disk-*") if p.stat().st_uid == os.getuid()]
        seen["sizes"] = [p.stat().st_size for p in files]
        seen["paths"] = files
        return {"ok": True}

    fire(cfg(disk_space={"mb": 3}), h=h)
    assert 3 * 1024 * 1024 in seen["sizes"]
    assert not any(p.exists() for p in seen["paths"])


def test_denylist_blocks_matching_hosts_and_only_during_the_invocation():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()

    def h(event, context):
        with pytest.raises(DenylistedConnection):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        with pytest.raises(DenylistedConnection):
            socket.getaddrinfo("dynamodb.us-east-1.amazonaws.com", 443)
        return "done"

    config = cfg(denylist={"hosts": [rf"127\.0\.0\.1:{port}$", r"^dynamodb\."]})
    assert fire(config, h=h) == "done"
    socket.create_connection(("127.0.0.1", port), timeout=2).close()  # restored afterwards
    deadline = time.monotonic() + 2
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(accepted) == 1  # only the unblocked connection reached the server
    accepted[0][0].close()
    server.close()


# ---- the decorator with SSM (moto) --------------------------------------------------------------


@pytest.fixture
def ssm(monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "UnitFn")
    with mock_aws():
        import boto3

        yield boto3.client("ssm", region_name="us-east-1")


def put(ssm, value):
    ssm.put_parameter(Name="/lab/faults/UnitFn", Value=value, Type="String", Overwrite=True)


def test_decorator_picks_up_changes_after_the_cache_ttl_without_redeploy(ssm):
    wrapped = inject_faults(cache_seconds=0.3)(lambda e, c: "real")
    assert wrapped({}, None) == "real"  # no parameter: no faults
    put(ssm, json.dumps({"faults": {"exception": {"message": "chaos"}}}))
    assert wrapped({}, None) == "real"  # absence still cached
    time.sleep(0.35)
    with pytest.raises(InjectedFault):
        wrapped({}, None)
    put(ssm, json.dumps({"enabled": False, "faults": {"exception": {}}}))
    time.sleep(0.35)
    assert wrapped({}, None) == "real"


def test_bad_config_never_crashes_the_function_and_is_logged(ssm, capsys):
    put(ssm, json.dumps({"faults": {"exception": {"rate": 2}}}))
    wrapped = inject_faults(cache_seconds=60)(lambda e, c: "real")
    assert wrapped({}, None) == "real"
    out = capsys.readouterr().out
    assert "lab_faults config rejected" in out and "rate = 2 is out of range" in out


def test_correlation_id_of_the_lab_functions_events():
    assert correlation_id_of({"requestContext": {"requestId": "api-req-1"}}) == "api-req-1"
    envelope = {"detail-type": "notify-order", "detail": {"meta_data": {"correlation_id": "m-1"}}}
    assert correlation_id_of(envelope) == "m-1"
    assert correlation_id_of({"Records": [{"eventSource": "aws:sqs", "body": json.dumps(envelope)}]}) == "m-1"


def test_outside_lambda_the_decorator_reads_nothing_and_runs_the_handler(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("LAB_FAULTS_PARAMETER", raising=False)
    wrapped = inject_faults(lambda e, c: "real")
    assert wrapped({}, None) == "real"
    assert wrapped.lab_faults_source() is None  # no SSM client was even created


def test_a_real_handler_error_passes_through_once(monkeypatch):
    calls = []

    def failing(event, context):
        calls.append(1)
        raise KeyError("real bug")

    for name in (None, "UnitFn"):
        calls.clear()
        if name:
            monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", name)
            # SSM unreachable: the injector gives up, the handler still runs exactly once
            monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        else:
            monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
        with pytest.raises(KeyError, match="real bug"):
            inject_faults(failing)({}, None)
        assert calls == [1]
