"""The report as Markdown: tables first (what a reader checks), plots after, config last.

Every table has a row or a column per topology of the run (those `TOPOLOGIES` chose, by default the
comparison pair), so a catalogue entry needs nothing here: the pair keeps the figures the article
is judged on, every other topology the same set of figures (`_fix_rows`, `side_by_side`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from report.capacity import Preview, render_text
from report.collect import TopologyResult
from report.courier_calls import SLOWDOWN_CEILING, per_minute, unloaded_success_p50, worst_slowdown
from report.fidelity import Comparison, outside
from report.overhead import P95_CEILING_SECONDS, PROBE_ACCOUNT, RATIO_CEILING, Overhead
from report.figures import Figures
from report.ledger import BUCKETS
from report.runs import RunWindow
from report.simulate import Simulation
from report.verdict import FC, NFC, Criterion

# a row of "Measured vs simulated": quantity, its value in a simulated run, the measured value,
# whether it is a share, and the steady-state figure
Row = tuple[str, Callable[[Simulation], float | None], float | None, bool, str]


@dataclass
class ReportData:
    window: RunWindow
    results: dict[str, TopologyResult]
    figures: Figures | None = None
    preview: Preview | None = None
    plots: list[tuple[str, str]] = field(default_factory=list)  # (title, relative png path)
    config: dict[str, str] = field(default_factory=dict)
    criteria: list[Criterion] | None = None
    warnings: list[str] = field(default_factory=list)
    offered: dict[str, int] = field(default_factory=dict)  # requests the load sent, per topology
    overhead: Overhead | None = None  # the probe account beside the storm (report.overhead)
    # topologies that ran in turns (report.run_order): each one's own load start, unix seconds;
    # empty when they ran side by side on one clock
    starts: dict[str, float] = field(default_factory=dict)
    ends: dict[str, float] = field(default_factory=dict)  # ... and when each one's load ended
    run_order: list[str] = field(default_factory=list)  # how the topologies ran, and why


def comparisons(data: ReportData, p: Preview) -> list[tuple[Comparison, str]]:
    """The headline figures, simulated (seed 1, and the range over every seed run) beside measured,
    each with its steady-state figure: for each simulated topology (the pair, and whatever else
    `TOPOLOGIES` chose), in the catalogue's order."""
    fig = data.figures or Figures()
    sims = p.spread or ((p.simulation,) if p.simulation else ())
    names = list(sims[0].topologies) if sims else [NFC, FC]
    rows: list[Row] = []
    for name in names:
        result = data.results.get(name)
        if name == NFC:
            rows += _storm_rows(p, result, fig)
        elif name == FC:
            rows += _remedy_rows(p, result, fig)
        else:
            rows += _fix_rows(name, p, result, fig)
    out = []
    for quantity, of, measured_value, share, steady in rows:
        values = [v for v in (of(sim) for sim in sims) if v is not None]
        first = of(sims[0]) if sims else None
        low, high = (min(values), max(values)) if len(values) > 1 else (None, None)
        out.append((Comparison(quantity, first, measured_value, share, low, high), steady))
    return out


def _storm_rows(p: Preview, r: TopologyResult | None, fig: Figures) -> list[Row]:
    """The storm's figures the article shows."""
    steady = f"{p.no_flow_control.peak_concurrency:.0f}" + (" (limit)" if p.no_flow_control.reaches_account_limit else "")
    return [
        (f"{NFC} orders accepted", lambda s: s.no_flow_control.accepted,
         len(r.accepted) if r else None, False, f"{p.total_orders:.0f}"),
        (f"{NFC} peak account concurrency", lambda s: s.no_flow_control.peak_account_concurrency,
         fig.peak_account_concurrency.get(NFC), False, steady),
        (f"{NFC} Lambda throttles", lambda s: sum(s.no_flow_control.throttles.values()),
         fig.lambda_throttles.get(NFC), False, "-"),
        (f"{NFC} courier 429s", lambda s: s.no_flow_control.courier_429s, fig.courier_429.get(NFC), False, "-"),
        (f"{NFC} delivery success, lowest minute", lambda s: s.no_flow_control.lowest_delivery_success,
         fig.lowest_delivery_success.get(NFC), True, "-"),
        (f"{NFC} actual success", lambda s: s.no_flow_control.actual_success,
         r.actual_success if r else None, True, _pct(p.no_flow_control.expected_success)),
        (f"{NFC} dead-lettered", lambda s: s.no_flow_control.dead_lettered,
         r.ledger.count("dead_lettered") if r else None, False, "-"),
        (f"{NFC} duplicated orders", lambda s: s.no_flow_control.duplicated,
         len(r.duplicates) if r else None, False, "-"),
    ]


def _remedy_rows(p: Preview, r: TopologyResult | None, fig: Figures) -> list[Row]:
    """The remedy's figures the article shows."""
    return [
        (f"{FC} orders accepted", lambda s: s.flow_control.accepted,
         len(r.accepted) if r else None, False, f"{p.total_orders:.0f}"),
        (f"{FC} peak delivery concurrency", lambda s: s.flow_control.peak_delivery_concurrency,
         fig.peak_delivery_concurrency.get(FC), False, f"{p.flow_control.peak_concurrency:.0f}"),
        (f"{FC} delivery success, lowest minute", lambda s: s.flow_control.lowest_delivery_success,
         fig.lowest_delivery_success.get(FC), True, "-"),
        (f"{FC} delivered after the drain", lambda s: s.flow_control.actual_success,
         r.ledger.share("delivered") if r and r.ledger.accepted else None, True,
         _pct(p.flow_control.expected_success)),
    ]


def _fix_rows(name: str, p: Preview, r: TopologyResult | None, fig: Figures) -> list[Row]:
    """Any other topology's figures: those its expectations and the storm's comparison use. The
    steady-state arithmetic covers the pair only."""
    return [
        (f"{name} orders accepted", lambda s: s[name].accepted, len(r.accepted) if r else None, False,
         f"{p.total_orders:.0f}"),
        (f"{name} peak account concurrency", lambda s: s[name].peak_account_concurrency,
         fig.peak_account_concurrency.get(name), False, "-"),
        (f"{name} peak delivery concurrency", lambda s: s[name].peak_delivery_concurrency,
         fig.peak_delivery_concurrency.get(name), False, "-"),
        (f"{name} Lambda throttles", lambda s: sum(s[name].throttles.values()), fig.lambda_throttles.get(name),
         False, "-"),
        (f"{name} courier 429s", lambda s: s[name].courier_429s, fig.courier_429.get(name), False, "-"),
        (f"{name} delivery success, lowest minute", lambda s: s[name].lowest_delivery_success,
         fig.lowest_delivery_success.get(name), True, "-"),
        (f"{name} dead-lettered", lambda s: s[name].dead_lettered,
         r.ledger.count("dead_lettered") if r else None, False, "-"),
        (f"{name} delivered after the drain", lambda s: s[name].actual_success,
         r.ledger.share("delivered") if r and r.ledger.accepted else None, True, "-"),
    ]


def side_by_side(data: ReportData) -> list[str]:
    """One column per topology of the run, the catalogue's fixes compared at a glance: the figures
    the issue's closing note asks for (peak concurrency, 429s, lowest minute, delivered, lost)."""
    f = data.figures or Figures()
    names = list(data.results)

    def ledger(bucket: str) -> Callable[[str, TopologyResult], str]:
        return lambda n, r: f"{r.ledger.count(bucket)} ({_pct(r.ledger.share(bucket))})" if r.ledger.accepted else "0"

    rows: list[tuple[str, Callable[[str, TopologyResult], str]]] = [
        ("peak account concurrency", lambda n, r: _num(f.peak_account_concurrency.get(n))),
        ("account limit", lambda n, r: _num(f.account_limit.get(n))),
        ("peak delivery concurrency", lambda n, r: _num(f.peak_delivery_concurrency.get(n))),
        ("Lambda throttles", lambda n, r: _num(f.lambda_throttles.get(n))),
        ("courier 429s", lambda n, r: _num(f.courier_429.get(n))),
        ("delivery success, lowest minute", lambda n, r: _pct(f.lowest_delivery_success.get(n))),
        ("accepted", lambda n, r: str(len(r.accepted))),
        ("delivered", ledger("delivered")),
        ("dead-lettered", ledger("dead_lettered")),
        ("in flight", ledger("in_flight")),
        ("lost", ledger("lost")),
        ("duplicated orders", lambda n, r: str(len(r.duplicates))),
    ]
    return _table(["", *names], [[label, *(cell(n, data.results[n]) for n in names)] for label, cell in rows])


def _value(x: float | None, share: bool) -> str:
    if x is None:
        return "-"
    return _pct(x) if share else f"{x:.0f}"


def _comparison_row(cmp: Comparison, steady: str) -> list[str]:
    ratio = "-" if cmp.ratio is None else f"{cmp.ratio:.2f}"
    faithful = {None: "-", True: f"yes ({cmp.bound()})", False: f"**no** ({cmp.bound()})"}[cmp.faithful]
    simulated = _value(cmp.simulated, cmp.share)
    if cmp.low is not None and cmp.high is not None and cmp.low != cmp.high:
        simulated += f" ({_value(cmp.low, cmp.share)}-{_value(cmp.high, cmp.share)})"
    return [cmp.quantity, steady, simulated, _value(cmp.measured, cmp.share), ratio, faithful]


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _num(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out + [""]


def render(data: ReportData) -> str:
    w = data.window
    names = list(data.results)
    f = data.figures
    md = [
        f"# Serverless Boundary Lab report: {w.folder.name}",
        "",
        f"Run {_utc(w.start)} -> {_utc(w.end)} ({w.seconds / 60:.1f} min), profile `{w.profile or 'unknown'}`"
        + ("" if w.finished else " (load still running when this was written)")
        + f"; written {_utc(datetime.now(UTC).timestamp())}.",
        "",
    ]
    for warning in data.warnings:
        md.append(f"> warning: {warning}")
    if data.warnings:
        md.append("")
    if data.run_order or data.starts:
        md += ["## How the topologies ran", ""]
        if data.starts:
            md += ["**In turns**: each topology alone on the machine, its load, then its drain, then the next "
                   "one's. Every figure of a topology is measured over its own turn, and the plots overlay the "
                   "topologies on the time since each one's own load started.", ""]
            md += _table(["topology", "load started", "load ended"],
                         [[n, _utc(s), _utc(data.ends[n]) if n in data.ends else "-"]
                          for n, s in sorted(data.starts.items(), key=lambda i: i[1])])
        else:
            md += ["**Side by side**: both loads at once, on one clock.", ""]
        md += [f"- {line}" for line in data.run_order] + [""]
    if data.criteria is not None:
        pair = [c for c in data.criteria if c.topology in (NFC, FC)]
        fixes = [c for c in data.criteria if c.topology not in (NFC, FC)]
        ok = all(c.ok for c in pair)
        headline = f"## Verdict: the article is {'REPRODUCED' if ok else 'NOT reproduced'}"
        if fixes:  # the other topologies chosen, judged on their catalogue entries' expectations
            held = sum(c.ok for c in fixes)
            headline += (f"; the fixes behave as their entries expect ({held} of {len(fixes)})" if held == len(fixes)
                         else f"; the fixes do **not** all behave as their entries expect ({held} of {len(fixes)})")
        md += [headline, ""]
        md += _table(
            ["topology", "criterion", "predicted (simulation)", "measured", "source", "holds"],
            [[c.topology, c.name,
              "-" if c.predicted is None else f"{c.predicted} ({'holds' if c.predicted_ok else 'fails'})",
              c.measured, c.source or "-", "yes" if c.ok else "**no**"] for c in data.criteria],
        )
        md += ["Sources: *platform metric* is the lab's live Lambda / API Gateway metrics (`/_lab/metrics`, "
               "Prometheus); *ledger* is every accepted order followed through CloudWatch Logs, the courier's "
               "table and the queues; *predicted* is the same criterion on the ideal-platform simulation "
               "(`report.simulate`).", ""]

    if data.results:
        md += ["## The topologies side by side", "",
               "Measured, one column per topology of the run (`TOPOLOGIES`; by default the comparison pair). "
               "Platform figures as in *Platform figures* below, orders as in the *Order ledger*.", ""]
        md += side_by_side(data)

    md += ["## Actual success rate, the article's way", "",
           "START lines of `notify-handler` vs COMPLETED lines of `delivery-handler` in CloudWatch Logs, "
           "matched by correlation_id: counted when the load ended (what the article's Logs Insights query "
           "showed when its test stopped) and again after the drain, when every retry has run.", ""]
    md += _table(
        ["topology", "notify START", "delivery COMPLETED (matched)", "actual success, load window",
         "actual success, after the drain", "sent by the load", "delivered / sent"],
        [
            [n, str(len(r.started)), str(len(r.completed & r.started)), _pct(r.actual_success_in_load),
             _pct(r.actual_success), str(data.offered[n]) if n in data.offered else "n/a",
             _pct(len(r.ledger.buckets["delivered"]) / data.offered[n]) if data.offered.get(n) else "n/a"]
            for n, r in data.results.items()
        ],
    )
    if any(data.offered.get(n, 0) > len(r.started) for n, r in data.results.items()):
        md += ["Requests the load sent that never reached a notify-handler START (refused at the front door, or "
               "no answer in time) are outside the article's measure; the last column counts them as not delivered.", ""]

    md += ["## Order ledger", "",
           "accepted (notify-handler COMPLETED) = delivered (courier record or delivery COMPLETED) + dead-lettered "
           "(DLQ / on-failure queue) + in flight (in the queue or retried recently) + lost (found nowhere, nothing pending).",
           ""]
    rows = []
    for n, r in data.results.items():
        led = r.ledger
        total = sum(led.count(b) for b in BUCKETS)
        rows.append(
            [n, str(len(r.accepted))]
            + [f"{led.count(b)} ({led.share(b):.1%})" for b in BUCKETS]
            + ["yes" if total == len(r.accepted) else f"**no ({total})**", "yes" if led.lost_decidable else "not yet"]
        )
    md += _table(["topology", "accepted", "delivered", "dead-lettered", "in flight", "lost", "adds up", "lost decidable"], rows)
    for n, r in data.results.items():
        extra = []
        if r.ledger.delivered_and_dead_lettered:
            extra.append(f"{len(r.ledger.delivered_and_dead_lettered)} delivered orders were also dead-lettered (counted delivered)")
        if r.ledger.unaccepted_seen:
            extra.append(f"{len(r.ledger.unaccepted_seen)} delivered/dead-lettered ids outside this run's accepted set (ignored)")
        examples = sorted(r.ledger.buckets["lost"])[:3]
        if examples:
            extra.append("lost e.g. " + ", ".join(f"`{e}`" for e in examples) + " (`make story ID=...`)")
        extra += r.notes
        for line in extra:
            md.append(f"- {n}: {line}")
    md.append("")

    md += ["## Duplicate deliveries at the courier", "",
           "`CourierDeliveries` items with `deliveries` > 1: the courier got the same order more than once.", ""]
    md += _table(
        ["topology", "orders recorded", "duplicated orders", "extra deliveries", "worst"],
        [
            [n, str(r.courier_records), str(len(r.duplicates)), str(sum(v - 1 for v in r.duplicates.values())),
             str(max(r.duplicates.values(), default=0))]
            for n, r in data.results.items()
        ],
    )

    md += ["## Delivery latency", "", "notify-handler START -> delivery-handler COMPLETED (first), seconds.", ""]
    md += _table(
        ["topology", "delivered", "p50", "p95", "p99", "max"],
        [[n, str(r.latency.count), _num(r.latency.p50, 2), _num(r.latency.p95, 2), _num(r.latency.p99, 2), _num(r.latency.max, 2)]
         for n, r in data.results.items()],
    )

    if f is not None:
        md += ["## Platform figures", "", f"Source: {f.source}.", ""]
        md += _table(
            ["topology", "peak account concurrency", "account limit", "peak delivery concurrency",
             "Lambda throttles", "courier 429s", "delivery invocations", "delivery errors"],
            [[n, _num(f.peak_account_concurrency.get(n)), _num(f.account_limit.get(n)), _num(f.peak_delivery_concurrency.get(n)),
              _num(f.lambda_throttles.get(n)), _num(f.courier_429.get(n)), _num(f.delivery_invocations.get(n)),
              _num(f.delivery_errors.get(n))] for n in names],
        )

        if any(f.throttles_by_function.values()):
            md += ["Lambda throttles by function (the account limit is shared: a storm in one function "
                   "throttles the others, the notify handler included):", ""]
            fns = sorted({fn for per in f.throttles_by_function.values() for fn in per})
            md += _table(["topology"] + fns,
                         [[n] + [_num(f.throttles_by_function.get(n, {}).get(fn, 0.0)) for fn in fns] for n in names])

    if data.preview is not None:
        p = data.preview
        md += ["## Measured vs simulated", ""]
        rows = comparisons(data, p)
        md += _table(["quantity", "steady state", "simulated: seed 1 (range over seeds)", "measured",
                      "measured / simulated", "within"],
                     [_comparison_row(cmp, steady) for cmp, steady in rows])
        off = outside([cmp for cmp, _ in rows])
        md += [f"Outside the bound: {', '.join(cmp.quantity for cmp in off)}." if off
               else "Every figure measured is within its bound of the simulation.", ""]
        md += ["Steady state is the preview's arithmetic (Little's law, mean waits): it has no clock, so it "
               "cannot see Lambda's retries landing after the overload. The simulation plays the profile out "
               "in time on an ideal platform (`report.simulate`, `report/README.md`): a measured figure far "
               "from it is the emulator's or the platform's departure from AWS, not AWS's behaviour.", ""]
        md += ["### Capacity preview", "", "```", render_text(p), "```", ""]

    call_rows = []
    for n, r in data.results.items():
        rows = per_minute(r.courier_calls, data.starts.get(n, w.start))
        base, worst = unloaded_success_p50(rows), worst_slowdown(rows)
        if base is None or worst is None:
            continue
        minute, ratio = worst
        throttled = [m for m in rows if m.throttled_p50 is not None and m.throttled >= 20]
        slowest_429 = max(throttled, key=lambda m: m.throttled_p50, default=None)
        call_rows.append([n, str(len(r.courier_calls)), f"{base * 1000:.0f} ms",
                          f"{minute.success_p50 * 1000:.0f} ms (minute {minute.minute})", f"{ratio:.2f}",
                          "yes" if ratio <= SLOWDOWN_CEILING else "**no**",
                          "-" if slowest_429 is None else
                          f"{slowest_429.throttled_p50 * 1000:.0f} / {slowest_429.throttled_p95 * 1000:.0f} ms (minute {slowest_429.minute})"])
    if call_rows:
        md += ["## The courier call, as the delivery function saw it", "",
               "From the delivery function's own lines (\"trying API delivery\" to \"courier answered\"). A success "
               "takes the courier's 0-2 s on AWS whatever the storm: a slower one is the emulator's. Unloaded: the "
               f"success p50 before the first 429; bound {SLOWDOWN_CEILING:g}x in every minute with 20 or more successes.", ""]
        md += _table(["topology", "calls answered", "success p50, unloaded", "slowest minute's success p50",
                      "x unloaded", f"within {SLOWDOWN_CEILING:g}x", "429 p50 / p95, slowest minute"], call_rows)

    if data.overhead is not None and data.overhead.minutes:
        o = data.overhead
        verdict = "kept up" if o.within_bounds() else "**was a second boundary**"
        md += ["## Emulator overhead beside the storm", "",
               f"A probe in account {PROBE_ACCOUNT} (its own concurrency pool) on the {NFC} LocalStack: a "
               "trivial function invoked directly and through API Gateway, twice a second. On AWS the storm next "
               "door would not slow it; whatever it shows above idle is the emulator's. Bound: at most "
               f"{RATIO_CEILING:g}x the idle p50 and p95 under {P95_CEILING_SECONDS * 1000:.0f} ms. "
               f"Idle p50: invoke {o.idle_invoke_p50 * 1000:.1f} ms, API Gateway {o.idle_api_p50 * 1000:.1f} ms; "
               f"{o.failed} probe calls failed. The emulator {verdict}.", ""]
        md += _table(["minute of the load", "probes", "invoke p50", "invoke p95", "x idle", "API Gateway p50",
                      "API Gateway p95", "x idle"],
                     [[str(m.minute), str(m.samples), f"{m.invoke_p50 * 1000:.1f} ms", f"{m.invoke_p95 * 1000:.1f} ms",
                       f"{m.invoke_p50 / o.idle_invoke_p50:.1f}", f"{m.api_p50 * 1000:.1f} ms",
                       f"{m.api_p95 * 1000:.1f} ms", f"{m.api_p50 / o.idle_api_p50:.1f}"] for m in o.minutes])

    if data.plots:
        md += ["## Over time", ""]
        for title, rel in data.plots:
            md += [f"### {title}", "", f"![{title}]({rel})", ""]

    md += ["## Log lines counted", ""]
    keys = sorted({k for r in data.results.values() for k in r.line_counts})
    md += _table(["log lines"] + names, [[k] + [str(r.line_counts.get(k, 0)) for r in data.results.values()] for k in keys])

    if data.config:
        md += ["## Configuration", ""]
        md += _table(["setting", "value"], [[k, v] for k, v in data.config.items()])
    return "\n".join(md).rstrip() + "\n"
