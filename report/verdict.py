"""Does the run reproduce the article? The criteria of issue #14, judged on measured values, and
on the simulated run's values to predict the verdict before the load starts.

Every profile is judged on the article's graphs: without flow control the account throttles
(where the simulation of the deployed configuration says it reaches its limit; at the article's
own 1,000 it does not, and the criteria then ask for no throttles and a peak below the limit),
the courier answers 429, delivery success collapses in some minute, and orders are delivered twice
or dead-lettered, at a concurrency far above flow control's; with flow control concurrency stays at
the mapping's maximum, the courier is not overrun, and every accepted order arrives. Loss is
judged on the seed profile only: a short overload is over before Lambda's retries land (1 and 3
minutes later), so on AWS too it loses nothing (issue #7's note).

Every other topology of the catalogue is a fix, judged on what its entry expects
(`[topology.expect]` in lab_kernel/topologies.toml: within its reservation, at least or at most the
storm's figures on the same run), so a new fix states its verdict as data, not code here. The
simulation's run is judged the same way first (`predict`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from lab_kernel.topologies import Topology, catalogue
from report.collect import TopologyResult
from report.figures import Figures
from report.simulate import SimulatedTopology, Simulation

NFC, FC = catalogue().pair  # the storm and the remedy (lab_kernel/topologies.toml)

LOWEST_MINUTE_CEILING_NFC = 0.50  # the article's graph bottoms out near 20%
LOWEST_MINUTE_FLOOR_FC = 0.95  # the article's graph with flow control stays near 98%
DELIVERED_FLOOR_FC = 0.98
COURIER_429_SHARE_CEILING_FC = 0.01
CONCURRENCY_FACTOR = 10  # the storm's peak account concurrency vs the remedy's delivery peak
# profiles long enough for Lambda's retries to land inside the overload: loss is judged there
LOSS_PROFILES = frozenset({"seed", "seed-code"})

# where each measured figure comes from (the verdict table names it)
PLATFORM = "platform metric"
LEDGER = "ledger"
SIMULATION = "simulation"
# the figures an expectation may compare (lab_kernel.topologies.MEASURES, Outcome's fields): how the
# verdict table names each, and where its measured value comes from
MEASURE_LABELS: dict[str, tuple[str, str]] = {
    "peak_account_concurrency": ("peak account concurrency", PLATFORM),
    "peak_delivery_concurrency": ("peak delivery concurrency", PLATFORM),
    "throttles": ("Lambda throttles", PLATFORM),
    "courier_429s": ("courier 429s", PLATFORM),
    "courier_calls": ("courier calls", PLATFORM),
    "dead_lettered": ("dead-lettered", LEDGER),
    "duplicated": ("duplicated orders", LEDGER),
}


@dataclass(frozen=True)
class Criterion:
    topology: str
    name: str
    measured: str
    ok: bool
    source: str = ""
    predicted: str | None = None  # the same criterion on the simulated run, when one was made
    predicted_ok: bool | None = None


@dataclass(frozen=True)
class Outcome:
    """What the criteria look at in one topology, measured or simulated."""

    topology: str
    accepted: int
    dead_lettered: int
    lost: int
    delivered_share: float | None
    duplicated: int = 0
    in_flight: int = 0
    lost_decidable: bool = True
    peak_account_concurrency: float | None = None
    account_limit: float | None = None
    throttles: float | None = None
    peak_delivery_concurrency: float | None = None
    courier_429s: float | None = None
    courier_calls: float | None = None
    lowest_delivery_success: float | None = None


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "not measured"
    return f"{value:.1%}" if pct else f"{value:g}"


def measured(result: TopologyResult, figures: Figures, account_limit: float | None) -> Outcome:
    t = result.name
    ledger = result.ledger
    return Outcome(
        topology=t,
        accepted=ledger.accepted,
        dead_lettered=ledger.count("dead_lettered"),
        lost=ledger.count("lost"),
        delivered_share=ledger.share("delivered") if ledger.accepted else None,
        duplicated=len(result.duplicates),
        in_flight=ledger.count("in_flight"),
        lost_decidable=ledger.lost_decidable,
        peak_account_concurrency=figures.peak_account_concurrency.get(t),
        account_limit=figures.account_limit.get(t) or _scaled(t, account_limit),
        throttles=figures.lambda_throttles.get(t),
        peak_delivery_concurrency=figures.peak_delivery_concurrency.get(t),
        courier_429s=figures.courier_429.get(t),
        courier_calls=figures.courier_calls.get(t),
        lowest_delivery_success=figures.lowest_delivery_success.get(t),
    )


def _scaled(topology: str, account_limit: float | None) -> float | None:
    """The topology's own limit when the deployed setting is `account_limit` (its factor applied)."""
    cat = catalogue()
    if account_limit is None or topology not in cat.names:
        return account_limit
    return float(cat.get(topology).account_limit(round(account_limit)))


def simulated(result: SimulatedTopology, account_limit: float) -> Outcome:
    return Outcome(
        topology=result.topology,
        accepted=result.accepted,
        dead_lettered=result.dead_lettered,
        lost=0,  # the simulation accounts for every order
        delivered_share=result.actual_success,
        duplicated=result.duplicated,
        peak_account_concurrency=result.peak_account_concurrency,
        account_limit=account_limit,
        throttles=sum(result.throttles.values()),
        peak_delivery_concurrency=result.peak_delivery_concurrency,
        courier_429s=result.courier_429s,
        courier_calls=result.courier_calls,
        lowest_delivery_success=result.lowest_delivery_success,
    )


def _reaches_limit(o: Outcome | None) -> bool:
    return (o is not None and o.peak_account_concurrency is not None and o.account_limit is not None
            and o.peak_account_concurrency >= o.account_limit)


def _no_flow_control(o: Outcome, fc: Outcome | None, profile: str | None,
                     expected: Outcome | None = None) -> list[Criterion]:
    """`expected`: the simulated run on the deployed configuration. Whether the account reaches its
    limit (and so throttles) depends on the limit: the article's account (1,000) peaked at 788 and
    did not; the lab's default (400) does. With a simulation, those two criteria ask for what it
    predicts; without one, for the default's storm."""
    t = o.topology
    low = o.lowest_delivery_success
    fc_peak = fc.peak_delivery_concurrency if fc else None
    storm_at_limit = expected is None or _reaches_limit(expected) or bool(expected.throttles)
    if storm_at_limit:
        throttles = Criterion(t, "Lambda throttles > 0", _fmt(o.throttles), bool(o.throttles and o.throttles > 0), PLATFORM)
    else:
        throttles = Criterion(t, "Lambda throttles = 0 (the simulated account stays below its limit)",
                              _fmt(o.throttles), o.throttles is not None and o.throttles == 0, PLATFORM)
    out = [
        throttles,
        Criterion(t, "courier 429s > 0", _fmt(o.courier_429s), bool(o.courier_429s and o.courier_429s > 0), PLATFORM),
        Criterion(t, f"delivery success in its lowest minute < {LOWEST_MINUTE_CEILING_NFC:.0%}", _fmt(low, pct=True),
                  low is not None and low < LOWEST_MINUTE_CEILING_NFC, PLATFORM),
        Criterion(t, "duplicated or dead-lettered orders > 0",
                  f"{o.duplicated} duplicated, {o.dead_lettered} dead-lettered",
                  o.duplicated + o.dead_lettered > 0, LEDGER),
        Criterion(t, f"peak account concurrency >= {CONCURRENCY_FACTOR}x {FC}'s peak delivery concurrency",
                  f"{_fmt(o.peak_account_concurrency)} vs {CONCURRENCY_FACTOR} x {_fmt(fc_peak)}",
                  o.peak_account_concurrency is not None and bool(fc_peak)
                  and o.peak_account_concurrency >= CONCURRENCY_FACTOR * fc_peak, PLATFORM),
    ]
    if profile in LOSS_PROFILES:
        limit, peak = o.account_limit, o.peak_account_concurrency
        if storm_at_limit:
            at_limit = Criterion(t, f"account concurrency reaches the limit ({_fmt(limit)})", f"peak {_fmt(peak)}",
                                 _reaches_limit(o), PLATFORM)
        else:
            at_limit = Criterion(t, f"account concurrency stays below the limit ({_fmt(limit)}), as simulated",
                                 f"peak {_fmt(peak)}", peak is not None and limit is not None and peak < limit, PLATFORM)
        out += [
            at_limit,
            Criterion(t, "dead-lettered > 0", _fmt(o.dead_lettered), o.dead_lettered > 0, LEDGER),
        ]
    return out


def _flow_control(o: Outcome, esm_max_concurrency: float) -> list[Criterion]:
    t, peak, share, low = o.topology, o.peak_delivery_concurrency, o.delivered_share, o.lowest_delivery_success
    calls, throttled = o.courier_calls, o.courier_429s
    share_429 = (throttled or 0.0) / calls if calls else None
    return [
        Criterion(t, f"delivery concurrency <= {esm_max_concurrency:g}", f"peak {_fmt(peak)}",
                  peak is not None and peak <= esm_max_concurrency, PLATFORM),
        Criterion(t, f"courier 429s <= {COURIER_429_SHARE_CEILING_FC:.0%} of its calls",
                  f"{_fmt(throttled or 0.0)} of {_fmt(calls)}" + (f" ({share_429:.2%})" if share_429 is not None else ""),
                  share_429 is not None and share_429 <= COURIER_429_SHARE_CEILING_FC, PLATFORM),
        Criterion(t, f"delivery success in its lowest minute >= {LOWEST_MINUTE_FLOOR_FC:.0%}", _fmt(low, pct=True),
                  low is not None and low >= LOWEST_MINUTE_FLOOR_FC, PLATFORM),
        Criterion(t, f"delivered >= {DELIVERED_FLOOR_FC:.0%} of accepted after the drain",
                  f"{_fmt(share, pct=True)} ({o.in_flight} still in flight)",
                  share is not None and share >= DELIVERED_FLOOR_FC and o.in_flight == 0, LEDGER),
        Criterion(t, "lost = 0", f"{o.lost}{'' if o.lost_decidable else ' (not yet decidable)'}",
                  o.lost == 0 and o.lost_decidable and o.accepted > 0, LEDGER),
    ]


def _expected(o: Outcome, storm: Outcome | None, entry: Topology) -> list[Criterion]:
    """A fix of the catalogue judged on its entry's `[topology.expect]`, against the storm's figures
    on the same run (or the same simulation)."""
    t, e = o.topology, entry.expect
    if not e:
        return [Criterion(t, "an expected behaviour stated in lab_kernel/topologies.toml ([topology.expect])",
                          "none stated", False)]
    out: list[Criterion] = []
    if e.delivery_within_reservation:
        reserved, peak = entry.delivery.reserved_concurrency, o.peak_delivery_concurrency
        out.append(Criterion(t, f"delivery concurrency <= its reservation ({reserved})", f"peak {_fmt(peak)}",
                             peak is not None and peak <= reserved, PLATFORM))
    for measures, sign, holds in ((e.at_least_the_storm, ">=", operator.ge), (e.at_most_the_storm, "<=", operator.le)):
        for measure in measures:
            label, source = MEASURE_LABELS[measure]
            mine = getattr(o, measure)
            theirs = getattr(storm, measure) if storm is not None else None
            out.append(Criterion(t, f"{label} {sign} {NFC}'s",
                                 f"{_fmt(mine)} vs {_fmt(theirs) if storm is not None else f'{NFC} not run'}",
                                 mine is not None and theirs is not None and holds(mine, theirs), source))
    return out


def expectations(outcomes: dict[str, Outcome], storm: Outcome | None) -> list[Criterion]:
    """The fixes among `outcomes` (every topology but the pair), in the catalogue's order."""
    cat = catalogue()
    return [c for entry in cat.topologies if entry.name in outcomes and entry.name not in cat.pair
            for c in _expected(outcomes[entry.name], storm, entry)]


def judge(
    nfc: Outcome | None, fc: Outcome | None, esm_max_concurrency: float = 10, profile: str | None = None,
    expected_nfc: Outcome | None = None,
) -> list[Criterion]:
    out: list[Criterion] = []
    if nfc is None:
        out.append(Criterion(NFC, "topology measured", "absent", False))
    else:
        out += _no_flow_control(nfc, fc, profile, expected_nfc)
    if fc is None:
        out.append(Criterion(FC, "topology measured", "absent", False))
    else:
        out += _flow_control(fc, esm_max_concurrency)
    return out


def check(
    results: dict[str, TopologyResult],
    figures: Figures | None,
    account_limit: float | None,
    esm_max_concurrency: float = 10,
    profile: str | None = None,
    sim: Simulation | None = None,
    sim_account_limit: float | None = None,
) -> list[Criterion]:
    f = figures or Figures()
    outcomes = {name: measured(result, f, account_limit) for name, result in results.items()}
    expected = None
    if sim is not None:
        expected = simulated(sim.no_flow_control, sim_account_limit if sim_account_limit is not None else account_limit or 0)
    criteria = judge(outcomes.get(NFC), outcomes.get(FC), esm_max_concurrency, profile, expected)
    return criteria + expectations(outcomes, outcomes.get(NFC))


def predict(
    sim: Simulation, account_limit: float, esm_max_concurrency: float = 10, profile: str | None = None
) -> list[Criterion]:
    """The verdict the simulated run would get: said before the load, so a run is not a surprise."""
    expected = simulated(sim.no_flow_control, account_limit)
    criteria = judge(expected, simulated(sim.flow_control, account_limit), esm_max_concurrency, profile, expected)
    fixes = {name: simulated(r, r.account_limit) for name, r in sim.topologies.items()}
    criteria += expectations(fixes, expected)
    return [Criterion(c.topology, c.name, c.measured, c.ok, SIMULATION) for c in criteria]


def beside(measured_criteria: list[Criterion], predicted_criteria: list[Criterion]) -> list[Criterion]:
    """The measured criteria, each with the simulation's value of the same criterion."""
    by_key = {(c.topology, c.name): c for c in predicted_criteria}
    out = []
    for c in measured_criteria:
        p = by_key.get((c.topology, c.name))
        out.append(Criterion(c.topology, c.name, c.measured, c.ok, c.source,
                             p.measured if p else None, p.ok if p else None))
    return out


def reproduced(criteria: list[Criterion]) -> bool:
    return bool(criteria) and all(c.ok for c in criteria)
