"""The shape's decisions at every phase boundary: pool size and the end of the run."""

from __future__ import annotations

import math

import pytest

from load.profiles import get_profile
from load.shape import (
    DRAIN_GRACE,
    LATENCY_FLOOR,
    MAX_SPAWN_RATE,
    MIN_USERS,
    POOL_STEP,
    REQUEST_TIMEOUT,
    ShapePlan,
)


def _needed(rate: float, latency: float, topologies: int, backlog: int = 0) -> int:
    budget = min(REQUEST_TIMEOUT, max(LATENCY_FLOOR, 2 * latency))
    wanted = (math.ceil(rate * budget) + MIN_USERS) * topologies + backlog
    return math.ceil(wanted / POOL_STEP) * POOL_STEP


@pytest.mark.parametrize("name", ["seed", "seed-code", "smoke"])
@pytest.mark.parametrize("topologies", [1, 2])
def test_pool_covers_the_peak_of_the_next_seconds_at_every_boundary(name, topologies) -> None:
    profile = get_profile(name)
    for boundary in profile.boundaries()[:-1]:
        for t in (boundary, max(0.0, boundary - 1)):
            plan = ShapePlan(profile, topologies)  # fresh: the pool never shrinks within a run
            users, spawn_rate = plan.tick(t, latency_p95=0.2)
            ahead = max(profile.rate_at(min(x, profile.duration - 1e-9)) for x in (t, t + 4.99))
            assert users >= _needed(ahead, 0.2, topologies), (name, t)
            assert spawn_rate == min(users, MAX_SPAWN_RATE)  # the whole pool within a second


def test_pool_follows_slow_responses_and_backlog() -> None:
    plan = ShapePlan(get_profile("seed"), 2)
    assert plan.tick(900, latency_p95=0.1)[0] == _needed(15, 0.1, 2)  # 1 s floor: 2*(15+2)=34->40
    assert plan.tick(900, latency_p95=4.0)[0] == _needed(15, 4.0, 2)  # 2*(120+2)=244 -> 250
    assert plan.tick(900, latency_p95=100.0)[0] == _needed(15, 100.0, 2)  # capped by the timeout
    assert plan.tick(900, latency_p95=100.0, backlog=7)[0] == _needed(15, 100.0, 2, 7)


def test_spawn_rate_is_capped() -> None:
    plan = ShapePlan(get_profile("seed"), 2)
    users, spawn_rate = plan.tick(900, latency_p95=10.0)
    assert users > MAX_SPAWN_RATE and spawn_rate == MAX_SPAWN_RATE


def test_pool_never_shrinks() -> None:
    plan = ShapePlan(get_profile("seed"), 1)
    high = plan.tick(1000, latency_p95=3.0)[0]
    assert plan.tick(1001, latency_p95=0.0)[0] == high


def test_lookahead_sees_the_next_phase() -> None:
    plan = ShapePlan(get_profile("smoke"), 1)
    # 1 s before the 2 -> 5 ramp ends, the pool is already sized for 5 req/s
    assert plan.peak_rate_ahead(39) == pytest.approx(5.0, abs=1e-3)
    assert plan.peak_rate_ahead(0) == pytest.approx(2.0)


def test_run_ends_at_the_profile_end_once_drained() -> None:
    profile = get_profile("smoke")
    plan = ShapePlan(profile, 2)
    end = profile.duration
    plan.tick(end - 1)
    assert plan.tick(end, in_flight=0, backlog=0) is None
    assert plan.tick(end, in_flight=3) == (plan.users, float(plan.users))
    assert DRAIN_GRACE > REQUEST_TIMEOUT  # every request sent gets its outcome recorded
    assert plan.tick(end, backlog=1) is not None
    assert plan.tick(end + DRAIN_GRACE, in_flight=3) is None  # stuck requests do not hold it open
