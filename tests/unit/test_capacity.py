"""The capacity preview's arithmetic, checked against hand-computed values."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from report.capacity import (
    CapacityInputs,
    Phase,
    Retry,
    attempts_within_timeout,
    flow_control_throughput,
    preview,
    profile_timeline,
    render_text,
    steady_no_flow_control,
)
from report.config_sources import ConfigError, courier_behaviour, load_phases, tenacity_policy

SEED_RETRY = Retry(attempts=5, wait_fixed=3, wait_random_min=0, wait_random_max=5)
SEED_PHASES = (
    Phase("warm up", 60, 2, 2),
    Phase("ramp up load", 120, 2, 5),
    Phase("ramp past the courier limit", 600, 4, 15),
    Phase("sustained overload", 300, 15, 15),
)


def inputs(**changes) -> CapacityInputs:
    base = CapacityInputs(
        profile="seed",
        phases=SEED_PHASES,
        function_timeout=29,
        retry=SEED_RETRY,
        courier_rate=10,
        courier_burst=10,
        courier_failure_rate=0.2,
        courier_latency_min=0,
        courier_latency_max=2,
        account_limit=400,
        async_retries=2,
        esm_max_concurrency=10,
        http_timeout=12,
    )
    return replace(base, **changes)


def finding(result, title_start: str):
    return next(f for f in result.findings if f.title.startswith(title_start))


def test_retry_budget_exceeds_timeout_with_the_seed_numbers():
    result = preview(inputs())
    budget = finding(result, "retry budget")
    assert not budget.holds
    assert "4 waits x up to 8 s = 32 s" in budget.detail
    assert "29 s timeout" in budget.detail
    # 5 attempts x 3 invocations (1 + 2 async retries)
    assert "up to 15 courier calls" in budget.detail


def test_retry_budget_holds_when_the_timeout_is_longer():
    assert finding(preview(inputs(function_timeout=33)), "retry budget").holds
    assert not finding(preview(inputs(function_timeout=31.9)), "retry budget").holds


def test_attempts_that_fit_before_the_timeout():
    # attempts start at 0, 8, 16, 24 s; the 5th would start at 32 s > 29 s
    assert attempts_within_timeout(SEED_RETRY, 29, 0) == 4
    assert attempts_within_timeout(SEED_RETRY, 33, 0) == 5
    # with 2 s calls the starts are 0, 10, 20 (30 > 29)
    assert attempts_within_timeout(SEED_RETRY, 29, 2) == 3


def test_offered_peak_vs_courier_limit():
    result = preview(inputs())
    peak = finding(result, "offered peak")
    assert result.peak_rate == pytest.approx(15, abs=0.1)
    assert not peak.holds
    assert "vs usage plan 10 req/s" in peak.detail
    # 15 / 0.8 = 18.75 requests/s offered; 10 x 0.8 = 8 orders/s can succeed = 53% of 15
    assert "18.8 req/s offered" in peak.detail
    assert "at most 8.0 orders/s" in peak.detail
    lower = preview(inputs(phases=(Phase("flat", 60, 5, 5),)))
    assert finding(lower, "offered peak").holds


def test_profile_totals_are_the_integral_of_the_rate():
    timeline = profile_timeline(SEED_PHASES)
    assert len(timeline) == 1080  # 18 minutes, one value a second
    # 60x2 + 120x3.5 + 600x9.5 + 300x15 = 120 + 420 + 5700 + 4500
    assert sum(timeline) == pytest.approx(10740, rel=1e-6)


def test_littles_law_without_failures():
    # no failures, no throttling: concurrency = arrival rate x mean call time (1 s for 0-2 s)
    state = steady_no_flow_control(inputs(courier_failure_rate=0.0), 4.0)
    assert state.call_failure == 0
    assert state.calls_per_order == pytest.approx(1.0)
    assert state.invocation_seconds == pytest.approx(1.0)
    assert state.concurrency == pytest.approx(4.0)
    assert state.success == pytest.approx(1.0)


def test_steady_state_with_the_seed_failure_rate_below_the_courier_limit():
    p, w = 0.2, 5.5  # mean wait 3 + 5/2
    state = steady_no_flow_control(inputs(), 2.0)
    calls = sum(p**k for k in range(5))
    duration = sum(p ** (k - 1) * (1 - p) * 1.0 for k in range(1, 6)) + sum(p**k * w for k in range(1, 5))
    assert state.call_failure == pytest.approx(p)  # 2 orders/s x 1.25 calls < 10 req/s: no 429
    assert state.invocation_seconds == pytest.approx(duration)
    invocations = 1 + p**5 + p**10
    assert state.concurrency == pytest.approx(2.0 * invocations * duration)
    assert state.success == pytest.approx(1 - p**15)


def test_overload_saturates_the_courier_and_the_account():
    result = preview(inputs())
    peak = result.no_flow_control.peak
    # the courier admits at most its rate; successes are bounded by rate x (1 - failure)
    assert peak.courier_calls * (1 - peak.call_failure) == pytest.approx(10 * 0.8, rel=0.02)
    assert peak.success * 15 <= 8.0 + 1e-6
    assert result.no_flow_control.reaches_account_limit
    assert result.no_flow_control.peak_concurrency == 400
    higher_limit = preview(inputs(account_limit=100_000))
    assert not higher_limit.no_flow_control.reaches_account_limit
    assert higher_limit.no_flow_control.peak_concurrency > 400


def test_flow_control_throughput_and_backlog():
    i = inputs()
    throughput, state = flow_control_throughput(i)
    p, w = 0.2, 5.5
    duration = sum(p ** (k - 1) * (1 - p) for k in range(1, 6)) + sum(p**k * w for k in range(1, 5))
    assert throughput == pytest.approx(10 / duration)
    assert state.concurrency == pytest.approx(10)
    result = preview(i)
    # backlog: what arrives above the throughput, accumulated second by second
    expected = 0.0
    for rate in profile_timeline(SEED_PHASES):
        expected = max(0.0, expected + rate - throughput)
    assert result.flow_control.backlog_at_end == pytest.approx(expected)
    assert result.flow_control.drain_seconds == pytest.approx(expected / throughput)
    assert result.flow_control.expected_success == pytest.approx(1 - p**5)


def test_render_names_each_finding_and_the_prediction():
    text = render_text(preview(inputs(sources={"phases": "load/profiles.toml [seed]"})))
    assert text.count("[FAIL]") == 4
    assert "32 s" in text and "peak 15 orders/s" in text
    assert "phases <- load/profiles.toml [seed]" in text


def test_empty_profile_is_refused():
    with pytest.raises(ValueError, match="no phases"):
        preview(inputs(phases=()))


def test_tenacity_policy_is_read_from_the_code(tmp_path: Path):
    code = tmp_path / "app.py"
    code.write_text(
        "from tenacity import retry, stop_after_attempt, wait_fixed, wait_random\n"
        "HTTP_TIMEOUT_SECONDS = (2.0, 7.5)\n"
        "ATTEMPTS = 7\n"
        "@retry(wait=wait_fixed(2) + wait_random(1, 4), stop=stop_after_attempt(ATTEMPTS))\n"
        "def f(): pass\n"
    )
    retry, timeout = tenacity_policy(code)
    assert retry == Retry(7, 2.0, 1.0, 4.0)
    assert retry.max_wait == 6 and retry.mean_wait == 4.5
    assert timeout == 7.5
    code.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="stop_after_attempt"):
        tenacity_policy(code)


def test_the_lab_delivery_code_gives_the_seed_policy():
    retry, timeout = tenacity_policy()
    assert (retry.attempts, retry.waits, retry.max_wait) == (5, 4, 8)
    assert timeout is not None and timeout < 29


def test_courier_behaviour_is_sampled_from_the_courier_code():
    failure, fastest, slowest = courier_behaviour("seed")
    assert abs(failure - 0.2) < 0.01
    assert 0 <= fastest < 0.05 and 1.95 < slowest <= 2.0
    failure, fastest, slowest = courier_behaviour("seed-code")
    assert abs(failure - 20 / 101) < 0.01
    assert (fastest, slowest) == (1.0, 10.0)
    with pytest.raises(ConfigError, match="unknown"):
        courier_behaviour("no-such-profile")


def test_smoke_profile_phases_come_from_the_load_package():
    phases = load_phases("smoke")
    assert sum(p.seconds for p in phases) <= 8 * 60
    assert max(max(p.start_rate, p.end_rate) for p in phases) == 15
    with pytest.raises(ConfigError):
        load_phases("no-such-profile")


def test_no_nan_anywhere():
    result = preview(inputs(courier_failure_rate=0.999))
    for value in (result.no_flow_control.peak.concurrency, result.flow_control.throughput):
        assert math.isfinite(value)
