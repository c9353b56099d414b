"""Pure scaling rules of the SQS ESM and async patches, and EventBridge rule labels."""

from __future__ import annotations

import pytest

from lab_platform.sqs_esm.concurrency import (
    INITIAL_CONCURRENCY,
    BACKED_OFF_FLOOR,
    MAX_CONCURRENCY,
    ConcurrencyLimit,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_maximum_concurrency_is_the_bound_whatever_the_backlog():
    limit = ConcurrencyLimit(10)
    limit.saw_messages()
    assert limit.allowed() == 10


def test_without_maximum_concurrency_start_at_5_and_add_300_per_minute_up_to_1250():
    clock = Clock()
    limit = ConcurrencyLimit(None, clock=clock)
    assert limit.allowed() == INITIAL_CONCURRENCY
    limit.saw_messages()
    clock.now = 30
    assert limit.allowed() == INITIAL_CONCURRENCY + 150
    clock.now = 3600
    assert limit.allowed() == MAX_CONCURRENCY
    limit.drained()
    assert limit.allowed() == INITIAL_CONCURRENCY


def test_maximum_concurrency_must_be_positive():
    with pytest.raises(ValueError, match="MaximumConcurrency"):
        ConcurrencyLimit(0)


def test_async_pool_is_the_account_limit_plus_headroom():
    from lab_platform.async_invoke.scaling import pool_size, throttle_retry_delay

    assert pool_size(100, environ={}) == 110
    assert pool_size(400, environ={}) == 440
    assert pool_size(100, environ={"LAB_ASYNC_HEADROOM": "5"}) == 105
    assert [throttle_retry_delay(n) for n in range(10)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]


def test_rule_labels_for_custom_and_default_bus():
    from lab_platform.metrics.events_hooks import rule_labels

    assert rule_labels("arn:aws:events:us-east-1:111111111111:rule/orders/to-delivery") == {
        "account": "111111111111",
        "region": "us-east-1",
        "event_bus": "orders",
        "rule": "to-delivery",
    }
    assert (
        rule_labels("arn:aws:events:us-east-1:111111111111:rule/nightly")["event_bus"] == "default"
    )


def test_settings_toggles_and_errors():
    from lab_platform import settings

    assert settings.enabled("LAB_PATCH_EMF", {})
    assert not settings.enabled("LAB_PATCH_EMF", {"LAB_PATCH_EMF": "off"})
    with pytest.raises(settings.SettingError, match="unknown lab platform toggle"):
        settings.enabled("LAB_PATCH_NOPE", {})
    with pytest.raises(settings.SettingError, match="is not a number"):
        settings.number("LAB_ASYNC_HEADROOM", 1, {"LAB_ASYNC_HEADROOM": "many"})


def test_keepalive_sweeper_fires_due_deadlines_once_and_skips_cancelled():
    from lab_platform.keepalive import Sweeper

    clock = Clock()
    sweeper = Sweeper(clock=clock, background=False)
    fired: list[str] = []
    a, b = object(), object()
    sweeper.schedule(a, 10, lambda: fired.append("a"))
    sweeper.schedule(b, 10, lambda: fired.append("b")).cancel()
    clock.now = 5
    assert sweeper.due() == []
    clock.now = 10
    for deadline in sweeper.due():
        deadline.callback()
    assert fired == ["a"]
    assert sweeper.due() == []
    # a new deadline for the same owner replaces the old one (release after reserve)
    sweeper.schedule(a, 1, lambda: fired.append("old"))
    sweeper.schedule(a, 5, lambda: fired.append("new"))
    clock.now = 20
    assert [d.callback() for d in sweeper.due()] == [None] and fired == ["a", "new"]


def test_is_throttle_follows_the_cause_chain():
    from botocore.exceptions import ClientError
    from localstack.aws.api.lambda_ import TooManyRequestsException
    from localstack.services.lambda_.event_source_mapping.event_processor import BatchFailureError
    from localstack.services.lambda_.event_source_mapping.senders.sender import SenderError

    from lab_platform.sqs_esm.scaling import is_throttle

    def chained(*errors: BaseException) -> BaseException:
        for inner, outer in zip(errors, errors[1:], strict=False):
            outer.__cause__ = inner
        return errors[-1]

    throttle = TooManyRequestsException("Rate Exceeded.")
    assert is_throttle(chained(throttle, SenderError("x"), BatchFailureError()))
    http = ClientError({"Error": {"Code": "TooManyRequestsException"}}, "Invoke")
    assert is_throttle(http)
    assert not is_throttle(chained(ValueError("boom"), SenderError("x"), BatchFailureError()))
    assert not is_throttle(ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "Invoke"))


def test_throttles_take_batches_from_the_allowance_and_the_scale_up_wins_them_back():
    clock = Clock()
    limit = ConcurrencyLimit(None, clock=clock)
    limit.saw_messages()
    clock.now = 60
    assert limit.allowed() == 305
    for _ in range(100):
        limit.throttled()
    assert limit.allowed() == 205  # one batch fewer per throttle
    clock.now = 70
    assert limit.allowed() == 305 + 50 - 100 + 50  # 10 s of scale-up (50) grow and win back alike
    for _ in range(10_000):
        limit.throttled()
    assert limit.allowed() == BACKED_OFF_FLOOR  # never below AWS's fewest batches
    clock.now = 200  # 353 batches taken, 130 s to win them back at 5 a second
    assert limit.allowed() == 1005  # fully won back: the scale-up alone bounds it again


def test_a_capped_mapping_backs_off_below_its_maximum_and_returns_to_it():
    clock = Clock()
    limit = ConcurrencyLimit(10, clock=clock)
    for _ in range(5):
        limit.throttled()
    assert limit.allowed() == 5
    clock.now = 0.6  # 300 a minute: 3 batches back
    assert limit.allowed() == 8
    clock.now = 5
    assert limit.allowed() == 10


def test_a_throttled_event_waits_its_back_off_until_its_maximum_age_then_only_what_is_left():
    from lab_platform.async_invoke.scaling import retry_delay_within_age

    assert [retry_delay_within_age(n, 0.0, 21600) for n in range(3)] == [1, 2, 4]
    assert retry_delay_within_age(5, 50.0, 60) == 10  # 32 s of back-off, 10 s of age left
    assert retry_delay_within_age(0, 59.6, 60) == 1  # never less than SQS's whole second
    assert retry_delay_within_age(0, 60.0, 60) is None  # too old: the on-failure destination
    assert retry_delay_within_age(9, 100.0, 21600) == 300
