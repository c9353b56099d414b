"""The report's time series: PromQL per panel (names from docs/METRICS.md) and the plots.

Every panel compares the two topologies on one time axis (minutes since the run started), which
is how the article's graphs are read: the divergence is the point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab_kernel import topologies as catalogue
from lab_kernel.endpoints import Endpoints
from report.prom import Prometheus, Series

COLOURS = {t.name: t.colour for t in catalogue.catalogue().topologies}
XLABEL = "minutes since the run started"


@dataclass(frozen=True)
class Line:
    query: str
    label: str  # format with the series' labels, e.g. "{topology} account"
    style: str = "-"
    cumulative: bool = False  # counter: plot the increase since the start of the run


@dataclass(frozen=True)
class Panel:
    slug: str
    title: str
    unit: str
    lines: tuple[Line, ...]
    ylim: tuple[float, float] | None = None


def window(seconds: float) -> str:
    """Rate window: wide enough for >= 4 scrapes at 5 s, narrow enough to show a 3-min run."""
    return "30s" if seconds <= 900 else "1m"


def panels(endpoints: Endpoints, seconds: float) -> tuple[Panel, ...]:
    w = window(seconds)
    any_topology = next(iter(endpoints.topologies.values()))
    courier = any_topology.functions["courier"]
    delivery = any_topology.functions["delivery"]
    api_ids = sorted(filter(None, (t.courier_api_id for t in endpoints.topologies.values())))
    api = f'api_id=~"{"|".join(api_ids)}"' if api_ids else ""

    def success(fn: str) -> str:
        inv = f'sum by (topology) (rate(lab_lambda_invocations_total{{function_name="{fn}"}}[{w}]))'
        err = f'sum by (topology) (rate(lab_lambda_errors_total{{function_name="{fn}"}}[{w}]))'
        return f"100 * (1 - ({err} or {inv} * 0) / ({inv} > 0))"

    return (
        Panel("courier_success", "Courier (SlowAPI) success %", "%", (Line(success(courier), "{topology}"),), (0, 105)),
        Panel("delivery_success", "Delivery function success %", "%", (Line(success(delivery), "{topology}"),), (0, 105)),
        Panel(
            "concurrency",
            "Concurrency against the account limit",
            "concurrent executions",
            (
                Line("sum by (topology) (lab_lambda_account_concurrent_executions)", "{topology} account"),
                Line(f'sum by (topology) (lab_lambda_concurrent_executions{{function_name="{delivery}"}})', "{topology} delivery", ":"),
                Line("max by (topology) (lab_lambda_account_concurrency_limit)", "{topology} limit", "--"),
            ),
        ),
        Panel(
            "throttles",
            "Throttles per second",
            "per second",
            (
                Line(f"sum by (topology) (rate(lab_lambda_throttles_total[{w}]))", "{topology} Lambda throttles"),
                Line(f"sum by (topology) (rate(lab_apigateway_throttled_total{{{api}}}[{w}]))", "{topology} courier 429", ":"),
            ),
        ),
        Panel(
            "queue_depth",
            "Queue depth (visible + in flight)",
            "messages",
            (Line("sum by (topology, queue_name) (lab_sqs_messages_visible + lab_sqs_messages_not_visible)", "{topology} {queue_name}"),),
        ),
        Panel(
            "queue_age",
            "Age of the oldest message",
            "seconds",
            (Line("max by (topology, queue_name) (lab_sqs_oldest_message_age_seconds)", "{topology} {queue_name}"),),
        ),
    )


# Not a PromQL panel: drawn from the order ledger's own times (`orders_from_logs`), because EMF's
# OrdersDelivered counts completed invocations and an order retried after a late failure counts
# twice there.
ORDERS_FROM_LOGS = Panel(
    "orders",
    "Orders accepted vs delivered (each order once)",
    "orders",
    (Line("", "{topology} accepted", "--"), Line("", "{topology} delivered", "-")),
)


def cumulative_count(times: list[float], start: float, end: float, step: float) -> list[tuple[float, float]]:
    """How many of `times` fell at or before each step from `start` to `end`."""
    ordered = sorted(times)
    points, seen, t = [], 0, start
    while t <= end + step / 2:
        while seen < len(ordered) and ordered[seen] <= t:
            seen += 1
        points.append((t, float(seen)))
        t += step
    return points


def orders_from_logs(
    per_topology: dict[str, tuple[list[float], list[float]]], start: float, end: float, step: float
) -> list[tuple[Line, list[Series]]]:
    """ORDERS_FROM_LOGS' data: topology -> (accepted times, first delivery times), one per order."""
    accepted_line, delivered_line = ORDERS_FROM_LOGS.lines
    return [
        (accepted_line, [Series({"topology": t}, cumulative_count(a, start, end, step)) for t, (a, _) in per_topology.items()]),
        (delivered_line, [Series({"topology": t}, cumulative_count(d, start, end, step)) for t, (_, d) in per_topology.items()]),
    ]


def fetch(prom: Prometheus, panel: Panel, start: float, end: float, step: float) -> list[tuple[Line, list[Series]]]:
    out = []
    for line in panel.lines:
        # Series of accounts that are no topology (the experiment's overhead probe, a user's own
        # app) have no `topology` label after relabelling: they are not the lab's to plot.
        series = [s for s in prom.range(line.query, start, end, step) if s.labels.get("topology")]
        if line.cumulative:
            series = [cumulate(s, start, step) for s in series]
        out.append((line, series))
    return out


def cumulate(series: Series, start: float, step: float) -> Series:
    """A counter as the increase since `start`: a series born inside the range started at 0."""
    if not series.points:
        return series
    born_inside = series.points[0][0] > start + 2 * step
    base = 0.0 if born_inside else series.points[0][1]
    points, offset, previous = [], 0.0, None
    for t, v in series.points:
        if previous is not None and v < previous:  # counter reset (LocalStack restarted)
            offset += previous
        previous = v
        points.append((t, v + offset - base))
    return Series(series.labels, points)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on this machine; PNG only
    import matplotlib.pyplot as plt

    return plt


def _draw(ax, panel: Panel, data: list[tuple[Line, list[Series]]], start: float, xlabel: str = XLABEL) -> None:
    for line, series in data:
        for s in sorted(series, key=lambda s: str(s.labels)):
            if not s.points:
                continue
            topology = s.labels.get("topology", "")
            xs, ys = with_gaps(s.points, start)
            label = line.label.format_map(_Default(s.labels))
            ax.plot(xs, ys, line.style, color=COLOURS.get(topology), label=label, linewidth=1.6)
    ax.set_title(panel.title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(panel.unit)
    if panel.ylim:
        ax.set_ylim(*panel.ylim)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def with_gaps(points: list[tuple[float, float]], start: float) -> tuple[list[float], list[float]]:
    """Minutes and values, with a break wherever scrapes are missing (an overloaded emulator
    answers no scrape): a straight line across the hole would invent values."""
    xs: list[float] = []
    ys: list[float] = []
    steps = sorted(b[0] - a[0] for a, b in zip(points, points[1:]))
    usual = steps[len(steps) // 2] if steps else 0.0
    previous = None
    for t, v in points:
        if previous is not None and usual and t - previous > 3 * usual:
            xs.append(float("nan"))
            ys.append(float("nan"))
        xs.append((t - start) / 60)
        ys.append(v)
        previous = t
    return xs, ys


def _has_points(data: list[tuple[Line, list[Series]]]) -> bool:
    return any(s.points for _, series in data for s in series)


def plot(panel: Panel, data: list[tuple[Line, list[Series]]], start: float, path: Path, xlabel: str = XLABEL) -> bool:
    """One PNG; False (and no file) when no query returned a point."""
    if not _has_points(data):
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    _draw(ax, panel, data, start, xlabel)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_headline(
    parts: list[tuple[Panel, list[tuple[Line, list[Series]]]]], start: float, path: Path, xlabel: str = XLABEL,
    subtitle: str = "",
) -> bool:
    """The article's divergence in one image: several panels side by side (for the README)."""
    parts = [(panel, data) for panel, data in parts if _has_points(data)]
    if not parts:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(parts), figsize=(6 * len(parts), 3.8), dpi=100, squeeze=False)
    for ax, (panel, data) in zip(axes[0], parts):
        _draw(ax, panel, data, start, xlabel)
    fig.suptitle("no flow control (red) vs flow control (green)" + subtitle, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


class _Default(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def topology_order(names: list[str]) -> list[str]:
    known = catalogue.names()
    return [t for t in known if t in names] + sorted(n for n in names if n not in known)
