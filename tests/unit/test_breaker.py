"""lab_breaker's state machine on a shared DynamoDB item (moto), with two 'environments'."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest
from lab_breaker import (
    BreakerSettings,
    CircuitBreakerError,
    FallbackUnavailable,
    SharedCircuitBreaker,
    TransitionLogger,
    park_delay,
    park_order,
)
from pybreaker import CircuitBreakerListener

from tests.support.function_modules import fake_aws_environment


class Recorder(CircuitBreakerListener):
    def __init__(self, log):
        self.log = log

    def state_change(self, cb, old_state, new_state):
        self.log.append(new_state.name)


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    fake_aws_environment(monkeypatch)
    with mock_aws():
        import boto3

        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="cb",
            KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield ddb, boto3.client("sqs", region_name="us-east-1")


SETTINGS = BreakerSettings(table="cb", name="courier", reset_timeout_s=0.4, probe_lease_s=5)


def env(ddb, transitions):
    """One Lambda environment's breaker (its own process state, the shared item)."""
    return SharedCircuitBreaker(SETTINGS, ddb, listeners=[TransitionLogger(), Recorder(transitions)])


def failing():
    raise ConnectionError("courier 503")


def test_seed_defaults():
    s = BreakerSettings()
    assert (s.failure_threshold, s.success_threshold, s.reset_timeout_s) == (3, 2, 10.0)


def test_settings_from_env_are_validated(monkeypatch):
    monkeypatch.setenv("CB_FAILURE_THRESHOLD", "5")
    monkeypatch.setenv("CB_TIMEOUT_SECONDS", "2.5")
    s = BreakerSettings.from_env()
    assert (s.failure_threshold, s.reset_timeout_s) == (5, 2.5)
    monkeypatch.setenv("CB_SUCCESS_THRESHOLD", "two")
    with pytest.raises(ValueError, match="CB_SUCCESS_THRESHOLD='two' is not a number"):
        BreakerSettings.from_env()


def test_full_cycle_closed_open_half_open_closed(aws, capsys):
    ddb, _ = aws
    transitions: list[str] = []
    a = env(ddb, transitions)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            a.call(failing)
    assert a.current_state == "closed" and a.fail_counter == 2
    with pytest.raises(CircuitBreakerError):
        a.call(failing)  # third failure trips it
    assert a.current_state == "open"
    calls = []
    with pytest.raises(CircuitBreakerError):
        a.call(lambda: calls.append(1))
    assert calls == []  # open: the courier is not called
    time.sleep(0.45)
    assert a.call(lambda: "ok") == "ok"  # probe 1 (half-open)
    assert a.current_state == "half-open"
    assert a.call(lambda: "ok") == "ok"  # probe 2 closes it
    assert a.current_state == "closed"
    assert transitions == ["open", "half-open", "closed"]
    out = capsys.readouterr().out
    for label in ("OPEN", "HALF_OPEN", "CLOSED"):
        assert f'"message": "CircuitBreaker state: {label}"' in out
        assert f'"state":"{label}"' in out and '"CircuitStateChange"' in out


def test_failures_from_several_environments_open_one_circuit(aws):
    ddb, _ = aws
    seen_a: list[str] = []
    seen_b: list[str] = []
    a, b = env(ddb, seen_a), env(ddb, seen_b)
    for breaker in (a, b):
        with pytest.raises(ConnectionError):
            breaker.call(failing)
    with pytest.raises(CircuitBreakerError):
        a.call(failing)
    calls = []
    with pytest.raises(CircuitBreakerError):
        b.call(lambda: calls.append(1))
    assert calls == [] and b.current_state == "open"
    assert seen_a == ["open"] and seen_b == []  # announced once, by the environment that won


def test_half_open_admits_a_single_probe_across_environments(aws):
    ddb, _ = aws
    seen: list[str] = []
    a, b = env(ddb, seen), env(ddb, seen)
    a.storage.force("open")
    time.sleep(0.45)
    probe_started, release = threading.Event(), threading.Event()
    result = {}

    def slow_probe():
        probe_started.set()
        release.wait(5)
        return "delivered"

    worker = threading.Thread(target=lambda: result.setdefault("a", a.call(slow_probe)))
    worker.start()
    assert probe_started.wait(5)
    b_calls = []
    with pytest.raises(CircuitBreakerError, match="probe is in flight elsewhere"):
        b.call(lambda: b_calls.append(1))
    assert b_calls == []
    release.set()
    worker.join(5)
    assert result["a"] == "delivered"
    # the lease is free again: B's probe is the second success and closes the circuit
    assert b.call(lambda: "ok") == "ok"
    assert b.current_state == "closed"
    assert seen == ["half-open", "closed"]


def test_a_failed_probe_reopens_the_circuit(aws):
    ddb, _ = aws
    seen: list[str] = []
    a = env(ddb, seen)
    a.storage.force("open")
    time.sleep(0.45)
    with pytest.raises(CircuitBreakerError, match="Trial call failed"):
        a.call(failing)
    assert a.current_state == "open"
    assert seen == ["half-open", "open"]
    assert a.storage.item().get("probe_owner") is None


def test_an_expired_probe_lease_is_taken_over(aws):
    ddb, _ = aws
    a = env(ddb, [])
    a.storage.force("half-open")
    assert a.storage.acquire_probe("dead-env", lease_seconds=0.2)
    assert not a.storage.acquire_probe("other", lease_seconds=5)
    time.sleep(0.25)
    assert a.storage.acquire_probe("other", lease_seconds=5)


def test_only_one_environment_wins_a_transition(aws):
    ddb, _ = aws
    a = env(ddb, [])
    a.storage.force("open")
    opened = a.storage.opened_at_raw()
    wins = [a.storage.transition("half-open", f"env{i}", 5, opened) for i in range(5)]
    assert wins == [True, False, False, False, False]


def test_fallback_parks_the_order_on_the_retry_queue(aws):
    _, sqs = aws
    url = sqs.create_queue(QueueName="retry")["QueueUrl"]
    order = {"order_id": "o-1", "correlation_id": "c-1"}
    park_order(sqs, url, order, "circuit open", delay_seconds=0)
    messages = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(messages[0]["Body"]) == order
    assert messages[0]["MessageAttributes"]["lab_parked_reason"]["StringValue"] == "circuit open"
    with pytest.raises(FallbackUnavailable):
        park_order(sqs, None, order, "circuit open")


def test_a_parked_order_waits_at_least_the_timeout_and_longer_each_park():
    rng = random.Random(7)
    for parks, high in ((0, 20), (1, 40), (2, 80), (5, 640), (6, 900), (10_000, 900)):
        delays = [park_delay(parks, 10.0, rng) for _ in range(400)]
        assert min(delays) >= 10 and max(delays) <= high, (parks, min(delays), max(delays))
        # jittered: a herd parked together comes back spread over the whole window
        assert max(delays) - min(delays) >= (high - 10) * 0.8, (parks, min(delays), max(delays))
    assert park_delay(0, 0.0, rng) == 0
    with pytest.raises(ValueError):
        park_delay(-1, 10.0)


def test_the_roles_grant_the_names_the_breaker_and_fault_injection_use():
    # bootstrap grants these up front (bootstrap/topology.py); a rename on one side only would
    # leave the delivery function without access on real AWS, where IAM is enforced
    from bootstrap import topology
    from lab_faults import PARAMETER_PREFIX

    assert BreakerSettings.table == topology.BREAKER_TABLE
    assert PARAMETER_PREFIX == topology.FAULTS_PARAMETER_PREFIX
