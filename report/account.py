"""A report of any account: every function, API, queue and rule in it, whatever created them.

The lab's own report (`make report`) follows orders through the three services of its two
topologies. An app deployed with `sam deploy` or `aws cloudformation deploy` (issue #18; the seed
repository itself, docs/SEED_APP.md) has no such contract, but the platform meters it all the same
(docs/METRICS.md, labels `account`, `function_name`, `api_name`, `queue_name`, `rule`): this report
reads those series from Prometheus over a time range and says, per resource, what the article's
graphs would show (invocations, errors, throttles, peak concurrency, 429s, queue depth, dropped
async events, dead-lettered events). The "any app" dashboard draws the same series over time.

`python -m report account --account 444444444444 [--start -20m | --run reports/<run>]`
(`make report ACCOUNT=...`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from report.figures import COUNTER_STEP
from report.prom import Prometheus

ACCOUNT = re.compile(r"^[0-9]{12}$")


class AccountError(ValueError):
    """A request this report cannot answer; the message says what to do."""


@dataclass
class FunctionRow:
    invocations: float = 0.0
    errors: float = 0.0
    throttles: float = 0.0
    peak_concurrency: float = 0.0
    duration_p95: float | None = None
    async_retried: float = 0.0
    async_dropped: float = 0.0
    destinations: dict[str, float] = field(default_factory=dict)  # destination_type -> events


@dataclass
class ApiRow:
    requests: float = 0.0
    by_class: dict[str, float] = field(default_factory=dict)  # 2xx, 4xx, 5xx
    throttled: float = 0.0  # answered 429 (usage plan rate, burst or quota)
    latency_p95: float | None = None


@dataclass
class QueueRow:
    peak_visible: float = 0.0
    peak_in_flight: float = 0.0
    last_visible: float = 0.0


@dataclass
class RuleRow:
    matched: float = 0.0
    invocations: float = 0.0
    failed: float = 0.0


@dataclass
class AccountFigures:
    account: str
    start: float
    end: float
    peak_account_concurrency: float | None = None
    account_limit: float | None = None
    functions: dict[str, FunctionRow] = field(default_factory=dict)
    apis: dict[str, ApiRow] = field(default_factory=dict)
    queues: dict[str, QueueRow] = field(default_factory=dict)
    rules: dict[str, RuleRow] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.functions or self.apis or self.queues or self.rules)


def gather(prom: Prometheus, account: str, start: float, end: float) -> AccountFigures:
    """Every series of `account` over [start, end]: counters counted through restarts on the
    scrape grid (as the lab's own report does), gauges at their peak, percentiles over the range."""
    if not ACCOUNT.match(account or ""):
        raise AccountError(f"not an account id: {account!r} (12 digits, e.g. ACCOUNT=444444444444)")
    if end <= start:
        raise AccountError("the range is empty: --end must be after --start")
    sel = f'account="{account}"'
    window = f"{max(int(math.ceil(end - start)), 10)}s"
    first = end - math.ceil((end - start) / COUNTER_STEP) * COUNTER_STEP
    figures = AccountFigures(account, start, end)

    def counted(metric: str, by: str) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for series in prom.range(f"sum by ({by}) ({metric}{{{sel}}})", first, end, COUNTER_STEP):
            key = tuple(series.labels.get(k.strip(), "") for k in by.split(","))
            out[key] = out.get(key, 0.0) + series.counted(first, COUNTER_STEP)
        return out

    def peak(metric: str, by: str) -> dict[str, float]:
        return {s.labels.get(by, ""): s.last or 0.0
                for s in prom.instant(f"max by ({by}) (max_over_time({metric}{{{sel}}}[{window}]))", end)}

    def p95(bucket: str, by: str) -> dict[str, float]:
        query = f"histogram_quantile(0.95, sum by (le, {by}) (increase({bucket}{{{sel}}}[{window}])))"
        return {s.labels.get(by, ""): s.last for s in prom.instant(query, end)
                if s.last is not None and math.isfinite(s.last)}

    account_peak = prom.instant(f"max(max_over_time(lab_lambda_account_concurrent_executions{{{sel}}}[{window}]))", end)
    limit = prom.instant(f"max(max_over_time(lab_lambda_account_concurrency_limit{{{sel}}}[{window}]))", end)
    figures.peak_account_concurrency = account_peak[0].last if account_peak else None
    figures.account_limit = limit[0].last if limit else None

    def function(name: str) -> FunctionRow:
        return figures.functions.setdefault(name, FunctionRow())

    for (name,), n in counted("lab_lambda_invocations_total", "function_name").items():
        function(name).invocations = n
    for (name,), n in counted("lab_lambda_errors_total", "function_name").items():
        function(name).errors = n
    for (name,), n in counted("lab_lambda_throttles_total", "function_name").items():
        function(name).throttles = n
    for (name,), n in counted("lab_lambda_async_events_retried_total", "function_name").items():
        function(name).async_retried = n
    for (name,), n in counted("lab_lambda_async_events_dropped_total", "function_name").items():
        function(name).async_dropped = n
    for (name, kind), n in counted("lab_lambda_destination_deliveries_total", "function_name, destination_type").items():
        function(name).destinations[kind] = n
    for name, value in peak("lab_lambda_concurrent_executions", "function_name").items():
        function(name).peak_concurrency = value
    for name, value in p95("lab_lambda_duration_seconds_bucket", "function_name").items():
        function(name).duration_p95 = value

    def api(name: str) -> ApiRow:
        return figures.apis.setdefault(name, ApiRow())

    for (name, status_class), n in counted("lab_apigateway_requests_total", "api_name, status_class").items():
        row = api(name)
        row.by_class[status_class] = n
        row.requests += n
    for (name,), n in counted("lab_apigateway_throttled_total", "api_name").items():
        api(name).throttled = n
    for name, value in p95("lab_apigateway_latency_seconds_bucket", "api_name").items():
        api(name).latency_p95 = value

    for name, value in peak("lab_sqs_messages_visible", "queue_name").items():
        figures.queues.setdefault(name, QueueRow()).peak_visible = value
    for name, value in peak("lab_sqs_messages_not_visible", "queue_name").items():
        figures.queues.setdefault(name, QueueRow()).peak_in_flight = value
    for series in prom.instant(f"max by (queue_name) (last_over_time(lab_sqs_messages_visible{{{sel}}}[{window}]))", end):
        figures.queues.setdefault(series.labels.get("queue_name", ""), QueueRow()).last_visible = series.last or 0.0

    for attribute, metric in (("matched", "lab_events_matched_events_total"),
                              ("invocations", "lab_events_invocations_total"),
                              ("failed", "lab_events_failed_invocations_total")):
        for (rule,), n in counted(metric, "rule").items():
            setattr(figures.rules.setdefault(rule, RuleRow()), attribute, n)
    return figures


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def render(figures: AccountFigures) -> str:
    stamp: Callable[[float], str] = lambda t: datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = [f"# Account {figures.account}: {stamp(figures.start)} to {stamp(figures.end)}", ""]
    if figures.empty:
        out.append("No series of this account in Prometheus over the range: was the app deployed to this "
                   "account, and did anything run in the range (`--start`, `--run`)?")
        return "\n".join(out) + "\n"
    limit = f" of its limit {_n(figures.account_limit)}" if figures.account_limit is not None else ""
    out += [f"Peak account concurrency: {_n(figures.peak_account_concurrency)}{limit}.", ""]
    if figures.functions:
        out += ["## Functions", "",
                "| function | invocations | errors | success | throttles | peak concurrency | duration p95 "
                "| async retried | async dropped | to destinations |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for name, f in sorted(figures.functions.items()):
            sent = ", ".join(f"{kind} {_n(n)}" for kind, n in sorted(f.destinations.items()) if n) or "0"
            out.append(f"| {name} | {_n(f.invocations)} | {_n(f.errors)} | {_pct(f.invocations - f.errors, f.invocations)} "
                       f"| {_n(f.throttles)} | {_n(f.peak_concurrency)} | {_s(f.duration_p95)} "
                       f"| {_n(f.async_retried)} | {_n(f.async_dropped)} | {sent} |")
        out.append("")
    if figures.apis:
        out += ["## APIs", "", "| API | requests | 2xx | 4xx | 5xx | answered 429 | latency p95 |",
                "|---|---|---|---|---|---|---|"]
        for name, a in sorted(figures.apis.items()):
            out.append(f"| {name} | {_n(a.requests)} | {_n(a.by_class.get('2xx', 0))} | {_n(a.by_class.get('4xx', 0))} "
                       f"| {_n(a.by_class.get('5xx', 0))} | {_n(a.throttled)} | {_s(a.latency_p95)} |")
        out.append("")
    if figures.queues:
        out += ["## Queues", "", "| queue | peak visible | peak in flight | visible at the end |", "|---|---|---|---|"]
        for name, q in sorted(figures.queues.items()):
            out.append(f"| {name} | {_n(q.peak_visible)} | {_n(q.peak_in_flight)} | {_n(q.last_visible)} |")
        out.append("")
    if figures.rules:
        out += ["## EventBridge rules", "", "| rule | matched | target invocations | failed |", "|---|---|---|---|"]
        for name, r in sorted(figures.rules.items()):
            out.append(f"| {name} | {_n(r.matched)} | {_n(r.invocations)} | {_n(r.failed)} |")
        out.append("")
    return "\n".join(out)


def write(figures: AccountFigures, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"account-{figures.account}.md"
    path.write_text(render(figures))
    return path
