"""The run order's decision (report.run_order) from given work, costs and cores, and the simulated
run's per-second work it is priced from (report.simulate)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from report.run_order import (
    AUTO,
    IN_TURNS,
    SIDE_BY_SIDE,
    OrderError,
    UnitCost,
    Work,
    available_cores,
    decide,
    need,
    parse_order,
    peak,
    stretch,
    utilisation_ceiling,
)
from report.simulate import simulate_topology

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_simulate import FC, NFC, SEED_PHASES, inputs, smoke  # noqa: E402 - the same configurations

COST = UnitCost(ms_per_invocation=10.0, ms_per_refusal=2.0, idle_cores=0.1, source="given")


def flat(topology: str, invocations: float, refusals: float = 0.0, seconds: int = 120, first: int = 0) -> Work:
    return Work(topology, {s: invocations for s in range(first, first + seconds)},
                {s: refusals for s in range(first, first + seconds)} if refusals else {})


def test_parse_order_accepts_the_three_and_says_what_else_to_write():
    assert parse_order(None) == AUTO
    assert parse_order("") == AUTO
    assert parse_order(" In-Turns ") == IN_TURNS
    assert parse_order("side-by-side") == SIDE_BY_SIDE
    with pytest.raises(OrderError) as error:
        parse_order("sideways")
    message = str(error.value)
    assert "\n" not in message and "'sideways'" in message
    assert all(choice in message for choice in (AUTO, SIDE_BY_SIDE, IN_TURNS))


def test_available_cores_is_the_affinity_capped_by_a_cgroup_quota():
    assert available_cores(4) == 4
    assert available_cores(4, "max 100000\n") == 4
    assert available_cores(4, "150000 100000\n") == 1.5
    assert available_cores(2, "800000 100000") == 2  # a quota above the affinity does not add cores
    assert available_cores(2, "nonsense") == 2


def test_the_utilisation_ceiling_is_where_erlang_c_stretches_requests_to_2x():
    # M/M/1: response / service = 1 / (1 - rho) <= 2  <=>  rho <= 1/2
    assert utilisation_ceiling(1) == pytest.approx(0.5, abs=1e-6)
    # M/M/2: C = 2 rho^2 / (1 + rho), response / service = 1 + C / (2 (1 - rho)) <= 2  <=>  rho^2 <= 1/2
    assert utilisation_ceiling(2) == pytest.approx(math.sqrt(0.5), abs=1e-6)
    assert stretch(2, math.sqrt(0.5)) == pytest.approx(2.0)
    # more cores take a higher utilisation for the same stretch; a fraction of a core counts down
    assert utilisation_ceiling(1) < utilisation_ceiling(2) < utilisation_ceiling(4) < utilisation_ceiling(16) < 1
    assert utilisation_ceiling(2.5) == utilisation_ceiling(2)
    assert stretch(2, 1.0) == math.inf


def test_peak_is_the_highest_mean_over_the_window_and_where_it_starts():
    series = [0.0, 1.0, 3.0, 3.0, 0.0, 2.0]
    assert peak(series, window=2) == (3.0, 2)
    assert peak(series, window=2, first_second=100) == (3.0, 102)
    assert peak(series, window=60) == (sum(series) / 60, 0)  # a run shorter than the window: idle after it
    assert peak([], window=60) == (0.0, 0)


def test_need_prices_invocations_and_refusals_and_adds_the_idle_cores():
    work = flat("no-flow-control", invocations=100, refusals=50)
    # 100 x 10 ms + 50 x 2 ms a second = 1.1 cores, + 0.1 idle
    assert need([work], COST).cores == pytest.approx(1.2)
    # a short burst counts for its share of the window only
    burst = Work("no-flow-control", {0: 600.0}, {})
    assert need([burst], COST, window=60).cores == pytest.approx(0.1 + 6.0 / 60)
    # two topologies at once add up second by second: the later one's peak overlaps the first's tail
    a, b = flat("no-flow-control", 50, seconds=120), flat("flow-control", 50, seconds=120, first=60)
    both = need([a, b], COST)
    assert both.cores == pytest.approx(0.1 + 1.0) and both.at_second == 60
    # cores other work keeps busy are cores the run does not get
    busy = UnitCost(10.0, 2.0, 0.1, "given", busy_elsewhere=0.5)
    assert need([work], busy).cores == pytest.approx(1.7)
    assert ", 0.50 cores busy with other work" in decide(AUTO, [work], busy, 2).reason
    assert "busy with other work" not in decide(AUTO, [work], COST, 2).reason


def test_side_by_side_where_both_fit_in_turns_where_only_each_alone_does():
    room = utilisation_ceiling(2) * 2  # 1.41 cores
    light = [flat("no-flow-control", 50), flat("flow-control", 30)]  # 0.1 + 0.8 cores at once
    heavy = [flat("no-flow-control", 100), flat("flow-control", 60)]  # 0.1 + 1.6 at once; 1.1 and 0.7 alone
    d = decide(AUTO, light, COST, 2, "smoke", 400)
    assert (d.order, d.checked, d.in_turns) == (SIDE_BY_SIDE, SIDE_BY_SIDE, False)
    assert d.both.cores == pytest.approx(0.9) and d.both.cores <= room
    assert d.reason.startswith("side by side: the smoke profile at limit 400 needs about 0.90 cores")
    assert "10.0 ms per Lambda invocation, 2.0 ms per refused request, 0.10 cores idle" in d.reason
    assert "this machine has 2 cores" in d.reason and "1.41 (71%, Erlang C)" in d.reason

    d = decide(AUTO, heavy, COST, 2, "seed", 1000)
    assert (d.order, d.checked, d.in_turns) == (IN_TURNS, IN_TURNS, True)
    assert d.alone["no-flow-control"].cores == pytest.approx(1.1)
    assert d.reason.startswith("in turns: the seed profile at limit 1000 needs about 1.70 cores at its peak "
                               "with both topologies at once, 1.10 for no-flow-control alone")
    assert "even alone" not in d.reason
    # the same work on 4 cores fits side by side
    assert decide(AUTO, heavy, COST, 4).order == SIDE_BY_SIDE
    # one topology too heavy even alone: still in turns (the closest to faithful), and said so
    huge = [flat("no-flow-control", 200), flat("flow-control", 30)]
    d = decide(AUTO, huge, COST, 2)
    assert d.order == IN_TURNS and "even alone more than the cores take" in d.reason


def test_a_forced_order_wins_and_the_check_is_still_said():
    heavy = [flat("no-flow-control", 100), flat("flow-control", 60)]
    d = decide(SIDE_BY_SIDE, heavy, COST, 2, "seed")
    assert (d.order, d.checked, d.requested) == (SIDE_BY_SIDE, IN_TURNS, SIDE_BY_SIDE)
    assert d.reason.startswith("side by side (EXPERIMENT_ORDER=side-by-side, overriding the check); the check said in turns")
    d = decide(IN_TURNS, heavy, COST, 2, "seed")
    assert d.order == IN_TURNS and "the check agrees: in turns" in d.reason


def test_without_a_measured_cost_or_a_simulated_run_nothing_is_decided():
    d = decide(AUTO, [flat("no-flow-control", 500)], None, 2)
    assert (d.order, d.checked, d.both) == (SIDE_BY_SIDE, "", None)
    assert d.reason == "side by side (the default): no measured cost, so no measured check"
    d = decide(IN_TURNS, [], COST, 2)
    assert (d.order, d.checked) == (IN_TURNS, "")
    assert d.reason == "in turns (asked for): no simulated run, so no measured check"


def test_the_simulated_work_counts_every_invocation_and_refusal_once():
    for topology in (NFC, FC):
        r = simulate_topology(inputs(phases=smoke(180)), topology)
        courier_invocations = r.courier_calls - r.courier_429s - r.throttles["courier"]
        assert sum(r.invocations_per_second.values()) == r.accepted + r.delivery_invocations + courier_invocations
        assert sum(r.refusals_per_second.values()) == r.courier_429s + sum(r.throttles.values())
        assert min(r.invocations_per_second) >= 0
    # the storm's work goes on after the load: Lambda's retries land 1 and 3 minutes later
    nfc = simulate_topology(inputs(phases=smoke(180)), NFC)
    assert max(nfc.invocations_per_second) > 310 + 60  # the load is 310 s


def test_the_article_account_needs_more_than_the_lab_default_at_the_same_prices():
    def work(limit: int) -> list[Work]:
        return [Work(r.topology, r.invocations_per_second, r.refusals_per_second)
                for r in (simulate_topology(inputs(phases=SEED_PHASES, account_limit=limit), t) for t in (NFC, FC))]

    at_400, at_1000 = need(work(400), COST), need(work(1000), COST)
    # a limit of 1,000 lets the storm run more invocations and refuse more calls a second
    assert at_1000.cores > at_400.cores
    # and the flow-control topology's work does not depend on the limit it never reaches
    fc_400 = need(work(400)[1:], COST)
    assert need(work(1000)[1:], COST).cores == pytest.approx(fc_400.cores)


def test_the_machines_busy_cpu_is_every_state_but_idle_and_iowait():
    import os

    from report.calibrate import CalibrationError, busy_seconds

    ticks = os.sysconf("SC_CLK_TCK")
    # user nice system idle iowait irq softirq steal
    assert busy_seconds("cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8\n") == pytest.approx(161 / ticks)
    with pytest.raises(CalibrationError):
        busy_seconds("intr 1 2 3\n")


def test_turns_run_the_storm_first_then_the_shortest_drains():
    from report.run_order import turn_order

    chosen = ["no-flow-control", "flow-control", "circuit-breaker", "api-destination"]
    drains = {"no-flow-control": 250.0, "flow-control": 600.0, "circuit-breaker": 2800.0, "api-destination": 200.0}
    assert turn_order(chosen, drains) == ["no-flow-control", "api-destination", "flow-control", "circuit-breaker"]
    assert turn_order(chosen, None) == chosen  # no simulation: the catalogue's order
    assert turn_order(chosen, {}) == chosen
