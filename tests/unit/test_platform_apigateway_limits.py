"""Token bucket, throttle resolution and quota periods of lab_platform.apigateway (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lab_platform.apigateway.limits import (
    Quota,
    QuotaCounter,
    Throttle,
    method_settings_key,
    period_start,
    stage_throttle,
    usage_plan_quota,
    usage_plan_throttle,
)
from lab_platform.apigateway.token_bucket import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_starts_full_then_refills_at_rate():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    assert [bucket.try_take() for _ in range(11)] == [True] * 10 + [False]
    clock.now += 0.25  # 2.5 tokens
    assert [bucket.try_take() for _ in range(3)] == [True, True, False]


def test_bucket_never_exceeds_burst():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    clock.now += 60
    assert sum(bucket.try_take() for _ in range(20)) == 5


def test_50_per_second_for_4_seconds_against_rate_10_burst_10_lets_50_through():
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    passed = 0
    for i in range(200):
        clock.now = 100.0 + i / 50
        passed += bucket.try_take()
    assert passed in (49, 50)


def test_bucket_rejects_negative_limits():
    with pytest.raises(ValueError, match="rate >= 0"):
        TokenBucket(rate=-1, burst=1)


def test_zero_rate_and_burst_throttle_everything():
    bucket = TokenBucket(rate=0, burst=0, clock=Clock())
    assert not bucket.try_take()


PLAN = {
    "id": "p1",
    "throttle": {"rateLimit": 10.0, "burstLimit": 20},
    "apiStages": [
        {
            "apiId": "a1",
            "stage": "prod",
            "throttle": {"/orders/POST": {"rateLimit": 1, "burstLimit": 2}},
        }
    ],
}


def test_usage_plan_per_method_override_wins_over_plan_throttle():
    scope, throttle = usage_plan_throttle(PLAN, "a1", "prod", "/orders", "POST")
    assert throttle == Throttle(rate=1.0, burst=2.0) and scope.startswith("method:")
    assert usage_plan_throttle(PLAN, "a1", "prod", "/orders", "GET") == (
        "plan",
        Throttle(rate=10.0, burst=20.0),
    )


def test_usage_plan_without_throttle_has_none():
    assert usage_plan_throttle({"id": "p", "apiStages": []}, "a", "s", "/", "GET") is None


def test_stage_method_settings_specific_key_then_wildcard():
    stage = {
        "methodSettings": {
            "*/*": {"throttlingRateLimit": 100.0, "throttlingBurstLimit": 200},
            "~1orders/POST": {"throttlingRateLimit": 5.0, "throttlingBurstLimit": 5},
        }
    }
    assert method_settings_key("/orders", "POST") == "~1orders/POST"
    assert stage_throttle(stage, "/orders", "POST")[1] == Throttle(5.0, 5.0)
    assert stage_throttle(stage, "/orders", "GET")[1] == Throttle(100.0, 200.0)
    assert stage_throttle({}, "/orders", "GET") is None


def test_stage_method_settings_without_throttling_fields_do_not_throttle():
    assert stage_throttle({"methodSettings": {"*/*": {"metricsEnabled": True}}}, "/", "GET") is None


def test_quota_counts_per_key_and_resets_each_period():
    counter = QuotaCounter()
    quota = Quota(limit=3, offset=0, period="DAY")
    day1 = datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert [counter.try_consume("p", "k", quota, day1) for _ in range(4)] == [True] * 3 + [False]
    assert counter.try_consume("p", "other-key", quota, day1)
    day2 = datetime(2026, 11, 24, 0, 0, 1, tzinfo=UTC)
    assert counter.try_consume("p", "k", quota, day2)


def test_quota_offset_only_reduces_the_first_period():
    counter = QuotaCounter()
    quota = Quota(limit=3, offset=2, period="DAY")
    day1 = datetime(2026, 11, 23, tzinfo=UTC)
    assert [counter.try_consume("p", "k", quota, day1) for _ in range(2)] == [True, False]
    day2 = datetime(2026, 11, 24, tzinfo=UTC)
    assert [counter.try_consume("p", "k", quota, day2) for _ in range(4)] == [True] * 3 + [False]


def test_period_starts_day_monday_week_first_of_month_utc():
    now = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)  # a Thursday
    assert period_start("DAY", now) == datetime(2026, 11, 26, tzinfo=UTC)
    assert period_start("WEEK", now) == datetime(2026, 11, 23, tzinfo=UTC)
    assert period_start("MONTH", now) == datetime(2026, 11, 1, tzinfo=UTC)


def test_quota_from_plan_validates_period():
    assert usage_plan_quota({"quota": {"limit": 5, "period": "WEEK"}}) == Quota(5, 0, "WEEK")
    assert usage_plan_quota({}) is None
    with pytest.raises(ValueError, match="not DAY, WEEK or MONTH"):
        usage_plan_quota({"quota": {"limit": 5, "period": "YEAR"}})
