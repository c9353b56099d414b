"""Does the run reproduce the article? The criteria of issue #7, checked on measured values, or
on a simulated run's values to predict the verdict before the load starts."""

from __future__ import annotations

from dataclasses import dataclass

from report.collect import TopologyResult
from report.figures import Figures
from report.simulate import SimulatedTopology, Simulation

SUCCESS_CEILING_NFC = 0.60  # the article measured ~20%; anything under 60% shows the collapse
DELIVERED_FLOOR_FC = 0.98  # the article's flow-control graph bottoms out near 98%


@dataclass(frozen=True)
class Criterion:
    topology: str
    name: str
    measured: str
    ok: bool


@dataclass(frozen=True)
class Outcome:
    """What the criteria look at in one topology, measured or simulated."""

    topology: str
    accepted: int
    actual_success: float | None
    dead_lettered: int
    lost: int
    delivered_share: float | None
    in_flight: int = 0
    lost_decidable: bool = True
    peak_account_concurrency: float | None = None
    account_limit: float | None = None
    throttles: float | None = None
    peak_delivery_concurrency: float | None = None


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
        actual_success=result.actual_success,
        dead_lettered=ledger.count("dead_lettered"),
        lost=ledger.count("lost"),
        delivered_share=ledger.share("delivered") if ledger.accepted else None,
        in_flight=ledger.count("in_flight"),
        lost_decidable=ledger.lost_decidable,
        peak_account_concurrency=figures.peak_account_concurrency.get(t),
        account_limit=figures.account_limit.get(t) or account_limit,
        throttles=figures.lambda_throttles.get(t),
        peak_delivery_concurrency=figures.peak_delivery_concurrency.get(t),
    )


def simulated(result: SimulatedTopology, account_limit: float) -> Outcome:
    return Outcome(
        topology=result.topology,
        accepted=result.accepted,
        actual_success=result.actual_success,
        dead_lettered=result.dead_lettered,
        lost=0,  # the simulation accounts for every order
        delivered_share=result.actual_success,
        peak_account_concurrency=result.peak_account_concurrency,
        account_limit=account_limit,
        throttles=sum(result.throttles.values()),
        peak_delivery_concurrency=result.peak_delivery_concurrency,
    )


def judge(nfc: Outcome | None, fc: Outcome | None, esm_max_concurrency: float = 10) -> list[Criterion]:
    out: list[Criterion] = []
    if nfc is None:
        out.append(Criterion("no-flow-control", "topology measured", "absent", False))
    else:
        t, limit, peak = nfc.topology, nfc.account_limit, nfc.peak_account_concurrency
        out.append(
            Criterion(t, f"account concurrency reaches the limit ({_fmt(limit)})", f"peak {_fmt(peak)}",
                      peak is not None and limit is not None and peak >= limit)
        )
        out.append(Criterion(t, "Lambda throttles > 0", _fmt(nfc.throttles), bool(nfc.throttles and nfc.throttles > 0)))
        success = nfc.actual_success
        out.append(
            Criterion(t, f"actual success < {SUCCESS_CEILING_NFC:.0%}", _fmt(success, pct=True),
                      success is not None and success < SUCCESS_CEILING_NFC)
        )
        out.append(
            Criterion(t, "dead-lettered or lost > 0", f"{nfc.dead_lettered} dead-lettered, {nfc.lost} lost",
                      nfc.dead_lettered + nfc.lost > 0)
        )
    if fc is None:
        out.append(Criterion("flow-control", "topology measured", "absent", False))
    else:
        t, peak, share = fc.topology, fc.peak_delivery_concurrency, fc.delivered_share
        out.append(
            Criterion(t, f"delivery concurrency <= {esm_max_concurrency:g}", f"peak {_fmt(peak)}",
                      peak is not None and peak <= esm_max_concurrency)
        )
        out.append(
            Criterion(t, f"delivered >= {DELIVERED_FLOOR_FC:.0%} after the drain",
                      f"{_fmt(share, pct=True)} ({fc.in_flight} still in flight)",
                      share is not None and share >= DELIVERED_FLOOR_FC and fc.in_flight == 0)
        )
        out.append(
            Criterion(t, "lost = 0", f"{fc.lost}{'' if fc.lost_decidable else ' (not yet decidable)'}",
                      fc.lost == 0 and fc.lost_decidable and fc.accepted > 0)
        )
    return out


def check(
    results: dict[str, TopologyResult],
    figures: Figures | None,
    account_limit: float | None,
    esm_max_concurrency: float = 10,
) -> list[Criterion]:
    f = figures or Figures()
    nfc, fc = results.get("no-flow-control"), results.get("flow-control")
    return judge(
        measured(nfc, f, account_limit) if nfc else None,
        measured(fc, f, account_limit) if fc else None,
        esm_max_concurrency,
    )


def predict(sim: Simulation, account_limit: float, esm_max_concurrency: float = 10) -> list[Criterion]:
    """The verdict the simulated run would get: said before the load, so a run is not a surprise."""
    return judge(
        simulated(sim.no_flow_control, account_limit),
        simulated(sim.flow_control, account_limit),
        esm_max_concurrency,
    )


def reproduced(criteria: list[Criterion]) -> bool:
    return bool(criteria) and all(c.ok for c in criteria)
