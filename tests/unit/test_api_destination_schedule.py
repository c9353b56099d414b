"""The API destination's schedule (lab_platform/api_destination/schedule.py): rate, retries, ends."""

from __future__ import annotations

import random

import pytest

from lab_platform.api_destination.schedule import (
    BACKOFF_CAP_SECONDS,
    DestinationSchedule,
    RetryPolicy,
    backoff,
    retriable,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_events_leave_at_the_destinations_rate_and_none_is_dropped():
    clock = Clock()
    schedule = DestinationSchedule(10, clock)
    for n in range(35):
        schedule.add(n)
    sent: list[tuple[float, int]] = []
    while len(schedule):
        sent += [(clock.now, d.payload) for d in schedule.take()]
        wait = schedule.wait()
        assert wait is not None or not len(schedule)
        clock.now += max(wait or 0.0, 0.01)
    assert [payload for _, payload in sent] == list(range(35))  # in arrival order, all of them
    per_second: dict[int, int] = {}
    for at, _ in sent:
        per_second[int(at - 1000.0)] = per_second.get(int(at - 1000.0), 0) + 1
    # paced: no second holds more than the rate, and 35 events take 3.4 s
    assert max(per_second.values()) <= 10, per_second
    gaps = [b[0] - a[0] for a, b in zip(sent, sent[1:])]
    assert min(gaps) >= 0.1 - 1e-9
    assert 3.4 - 1e-9 <= sent[-1][0] - 1000.0 <= 3.5


def test_an_empty_schedule_waits_for_nothing():
    schedule = DestinationSchedule(10, Clock())
    assert schedule.wait() is None and schedule.take() == []


@pytest.mark.parametrize("status,expected", [(None, True), (401, True), (407, True), (409, True), (429, True),
                                             (500, True), (502, True), (599, True), (400, False),
                                             (403, False), (404, False), (200, False)])
def test_which_answers_are_retried(status, expected):
    assert retriable(status) is expected


def test_backoff_is_full_jitter_under_an_exponential_cap():
    rng = random.Random(7)
    for retry in (1, 2, 5, 12, 40):
        cap = min(BACKOFF_CAP_SECONDS, 2.0 ** (retry - 1))
        waits = [backoff(retry, rng) for _ in range(200)]
        assert all(0.0 <= w <= cap for w in waits)
        assert max(waits) > cap * 0.8  # jitter spreads over the whole window


def test_a_retriable_answer_comes_back_later_and_a_success_ends_it():
    clock = Clock()
    schedule = DestinationSchedule(10, clock, random.Random(1))
    delivery = schedule.add("order")
    assert schedule.take() == [delivery]
    verdict = schedule.answered(delivery, 502, RetryPolicy())
    assert verdict.retry_at is not None and not verdict.dead and delivery.retries == 1
    assert len(schedule) == 1
    clock.now = verdict.retry_at
    assert schedule.take() == [delivery]
    assert schedule.answered(delivery, 200, RetryPolicy()) == type(verdict)()
    assert len(schedule) == 0


def test_an_event_is_undecided_from_its_arrival_until_its_answer_ends_it():
    clock = Clock()
    schedule = DestinationSchedule(10, clock, random.Random(1))
    delivery = schedule.add("order")
    assert schedule.undecided() == 1 and len(schedule) == 1
    schedule.take()
    assert schedule.undecided() == 1 and len(schedule) == 0  # being sent: still undecided
    schedule.answered(delivery, 429, RetryPolicy())
    assert schedule.undecided() == 1  # back on the schedule for its retry
    clock.now += BACKOFF_CAP_SECONDS
    schedule.take()
    schedule.answered(delivery, 400, RetryPolicy())
    assert schedule.undecided() == 0


def test_a_final_error_ends_at_once():
    schedule = DestinationSchedule(10, Clock())
    delivery = schedule.add("order")
    schedule.take()
    verdict = schedule.answered(delivery, 400, RetryPolicy())
    assert verdict.dead and "not retried" in verdict.reason and verdict.exhausted is None and len(schedule) == 0


def test_the_retry_policy_bounds_attempts_and_age():
    clock = Clock()
    schedule = DestinationSchedule(100, clock, random.Random(3))
    delivery = schedule.add("order")
    policy = RetryPolicy(max_attempts=2, max_age_seconds=3600)
    outcomes = []
    for _ in range(3):
        clock.now += 400
        (taken,) = schedule.take()
        outcomes.append(schedule.answered(taken, 429, policy))
    assert [o.dead for o in outcomes] == [False, False, True]
    assert outcomes[-1].exhausted == "MaximumRetryAttempts"
    assert "2 retries" in outcomes[-1].reason

    young = schedule.add("late")
    schedule.take()
    clock.now += 10_000  # older than the policy's age by the time it would be retried
    verdict = schedule.answered(young, None, RetryPolicy(max_attempts=185, max_age_seconds=60))
    assert verdict.dead and "older than 60" in verdict.reason and verdict.exhausted == "MaximumEventAgeInSeconds"


def test_the_targets_retry_policy_defaults_to_awss():
    assert RetryPolicy.of_target({}) == RetryPolicy(185, 86400)
    policy = RetryPolicy.of_target({"RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}})
    assert policy == RetryPolicy(0, 60)


def test_a_changed_rate_applies():
    clock = Clock()
    schedule = DestinationSchedule(1, clock)
    for n in range(5):
        schedule.add(n)
    assert len(schedule.take()) == 1
    clock.now += 0.5
    assert schedule.take() == []  # one a second
    schedule.set_rate(5)
    assert len(schedule.take()) == 1  # a new bucket starts with its one token
    clock.now += 0.2
    assert len(schedule.take()) == 1  # then one every 0.2 s
