"""Does the run reproduce the article? The criteria of issue #7, checked on measured values."""

from __future__ import annotations

from dataclasses import dataclass

from report.collect import TopologyResult
from report.figures import Figures

SUCCESS_CEILING_NFC = 0.60  # the article measured ~20%; anything under 60% shows the collapse
DELIVERED_FLOOR_FC = 0.98  # the article's flow-control graph bottoms out near 98%


@dataclass(frozen=True)
class Criterion:
    topology: str
    name: str
    measured: str
    ok: bool


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "not measured"
    return f"{value:.1%}" if pct else f"{value:g}"


def check(
    results: dict[str, TopologyResult],
    figures: Figures | None,
    account_limit: float | None,
    esm_max_concurrency: float = 10,
) -> list[Criterion]:
    f = figures or Figures()
    out: list[Criterion] = []
    nfc = results.get("no-flow-control")
    if nfc is None:
        out.append(Criterion("no-flow-control", "topology measured", "absent", False))
    else:
        t = nfc.name
        limit = f.account_limit.get(t) or account_limit
        peak = f.peak_account_concurrency.get(t)
        out.append(
            Criterion(t, f"account concurrency reaches the limit ({_fmt(limit)})", f"peak {_fmt(peak)}",
                      peak is not None and limit is not None and peak >= limit)
        )
        throttles = f.lambda_throttles.get(t)
        out.append(Criterion(t, "Lambda throttles > 0", _fmt(throttles), bool(throttles and throttles > 0)))
        success = nfc.actual_success
        out.append(
            Criterion(t, f"actual success < {SUCCESS_CEILING_NFC:.0%}", _fmt(success, pct=True),
                      success is not None and success < SUCCESS_CEILING_NFC)
        )
        bad = nfc.ledger.count("dead_lettered") + nfc.ledger.count("lost")
        out.append(
            Criterion(t, "dead-lettered or lost > 0",
                      f"{nfc.ledger.count('dead_lettered')} dead-lettered, {nfc.ledger.count('lost')} lost", bad > 0)
        )
    fc = results.get("flow-control")
    if fc is None:
        out.append(Criterion("flow-control", "topology measured", "absent", False))
    else:
        t = fc.name
        peak = f.peak_delivery_concurrency.get(t)
        out.append(
            Criterion(t, f"delivery concurrency <= {esm_max_concurrency:g}", f"peak {_fmt(peak)}",
                      peak is not None and peak <= esm_max_concurrency)
        )
        share = fc.ledger.share("delivered") if fc.ledger.accepted else None
        in_flight = fc.ledger.count("in_flight")
        out.append(
            Criterion(t, f"delivered >= {DELIVERED_FLOOR_FC:.0%} after the drain",
                      f"{_fmt(share, pct=True)} ({in_flight} still in flight)",
                      share is not None and share >= DELIVERED_FLOOR_FC and in_flight == 0)
        )
        lost = fc.ledger.count("lost")
        out.append(
            Criterion(t, "lost = 0", f"{lost}{'' if fc.ledger.lost_decidable else ' (not yet decidable)'}",
                      lost == 0 and fc.ledger.lost_decidable and fc.ledger.accepted > 0)
        )
    return out


def reproduced(criteria: list[Criterion]) -> bool:
    return bool(criteria) and all(c.ok for c in criteria)
