"""`python -m report build`: collect, plot, render `reports/<run>/report.md`."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import requests

from lab_kernel.settings import REPO_ROOT, Settings
from report import aws_state, overlay, panels
from report.capacity import Preview, preview
from report.collect import DEFAULT_SETTLE_SECONDS, TopologyResult, collect
from report.config_sources import ConfigError, gather, live_config
from lab_kernel import topologies as catalogue
from lab_kernel.endpoints import Endpoints, TopologyEndpoints
from report.figures import Figures, from_prometheus, merge
from report.overhead import Overhead
from report.prom import Prometheus, PrometheusError
from report.render import ReportData, render
from report.runs import RunWindow
from report.verdict import Criterion

PACKAGES = ("localstack-core", "boto3", "aws-lambda-powertools", "tenacity", "requests", "locust", "matplotlib")


def say(message: str) -> None:
    print(f"report: {message}", file=sys.stderr, flush=True)


def client_factory(endpoints: Endpoints):
    cache: dict[tuple[str, str], Any] = {}

    def client_for(topology: TopologyEndpoints, service: str) -> Any:
        key = (topology.name, service)
        if key not in cache:
            cache[key] = aws_state.client(endpoints, topology, service)
        return cache[key]

    return client_for


def versions(endpoints: Endpoints) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        health = requests.get(f"{endpoints.localstack_url}/_localstack/health", timeout=5).json()
        edition = health.get("edition")
        out["LocalStack (running)"] = f"{health.get('version', '?')} {edition if edition not in (None, 'unknown') else ''}".strip()
    except (requests.RequestException, ValueError):
        out["LocalStack (running)"] = "unreachable"
    out["Python"] = platform.python_version()
    for name in PACKAGES:
        try:
            out[f"{name} version"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        out["lab commit"] = commit.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return out


def configuration(endpoints: Endpoints, window: RunWindow, prev: Preview | None, live: dict[str, Any] | None) -> dict[str, str]:
    cfg: dict[str, str] = {"profile": window.profile or "unknown"}
    if window.run_id:
        cfg["run id (order id prefix)"] = window.run_id
    if prev is not None:
        i = prev.inputs
        cfg["profile phases"] = "; ".join(
            f"{p.name}: {p.seconds:g} s at {p.start_rate:g}" + (f"->{p.end_rate:g}" if p.end_rate != p.start_rate else "") + "/s"
            for p in i.phases
        )
        cfg["tenacity policy"] = (f"stop_after_attempt({i.retry.attempts}), wait_fixed({i.retry.wait_fixed:g}) + "
                           f"wait_random({i.retry.wait_random_min:g}, {i.retry.wait_random_max:g})")
        cfg["courier HTTP read timeout"] = f"{i.http_timeout:g} s" if i.http_timeout else "none"
        cfg["courier behaviour"] = (f"{i.courier_failure_rate:.1%} fail, successes {i.courier_latency_min:.1f}-"
                                    f"{i.courier_latency_max:.1f} s")
    if live:
        cfg["delivery function timeout"] = f"{live['function_timeout']:g} s"
        cfg["delivery memory"] = f"{live.get('delivery_memory')} MB"
        cfg["function runtime"] = str(live.get("runtime"))
        cfg["account concurrency limit (each account)"] = str(live["account_limit"])
        cfg["courier usage plan"] = f"rate {live['courier_rate']:g}/s, burst {live['courier_burst']:g}"
        cfg[f"async retries ({catalogue.catalogue().storm})"] = str(live["async_retries"])
        cfg[f"ESM maximum concurrency ({catalogue.catalogue().remedy})"] = str(live["esm_max_concurrency"])
        cfg["courier profile (deployed)"] = str(live["courier_profile"])
    cfg["Lambda executor"] = Settings.load().get("LAMBDA_RUNTIME_EXECUTOR", "?")
    for name, topology in endpoints.topologies.items():
        cfg[f"{name} account"] = topology.account
    cfg.update(versions(endpoints))
    return cfg


def plot_all(
    endpoints: Endpoints,
    window: RunWindow,
    out_dir: Path,
    end: float,
    results: dict[str, TopologyResult],
    windows: dict[str, RunWindow] | None = None,
) -> tuple[list[tuple[str, str]], list[str]]:
    """Every panel as a PNG. With `windows` (topologies that ran in turns), each topology's series
    are read over its own turn and moved onto the first turn's clock (`report.overlay`)."""
    if not endpoints.prometheus_url:
        return [], ["no prometheus_url in .lab/endpoints.json: plots skipped"]
    prom = Prometheus(endpoints.prometheus_url)
    if windows:
        start = overlay.reference(windows)
        moved = overlay.offsets(windows)
        until = overlay.observed_until(windows, end)
        span = max(until[n] - w.start for n, w in windows.items())
        xlabel, subtitle = "minutes since its own load started", " (in turns, each on the time since its own load started)"
    else:
        start, moved, until, span = window.start, {}, {}, end - window.start
        xlabel, subtitle = panels.XLABEL, ""
    step = max(5.0, round(span / 300))
    plots: list[tuple[str, str]] = []
    warnings: list[str] = []
    fetched = {}

    def draw(panel: panels.Panel, data: list) -> None:
        fetched[panel.slug] = (panel, data)
        path = out_dir / "plots" / f"{panel.slug}.png"
        if panels.plot(panel, data, start, path, xlabel):
            plots.append((panel.title, f"plots/{path.name}"))
        else:
            warnings.append(f"panel '{panel.title}': no data in Prometheus for this range")

    def fetch(panel: panels.Panel) -> list:
        if not windows:
            return panels.fetch(prom, panel, window.start, end, step)
        turns = {n: panels.fetch(prom, panel, w.start, until[n], step) for n, w in windows.items()}
        return [(line, [s for n, data in turns.items() for s in overlay.own_series(data[i][1], n, moved[n])])
                for i, line in enumerate(panel.lines)]

    for panel in panels.panels(endpoints, span):
        try:
            draw(panel, fetch(panel))
        except PrometheusError as error:
            return plots, [str(error) + ": plots skipped"]
    # the business outcome from the ledger's records, each order once
    draw(panels.ORDERS_FROM_LOGS, panels.orders_from_logs(
        {n: (overlay.shift_times(list(r.accepted_at.values()), moved.get(n, 0.0)),
             overlay.shift_times(list(r.delivered_at.values()), moved.get(n, 0.0))) for n, r in results.items()},
        start, start + span, step,
    ))
    headline = [fetched[s] for s in ("concurrency", "delivery_success", "orders") if s in fetched]
    if panels.plot_headline(headline, start, out_dir / "plots" / "headline.png", xlabel, subtitle):
        plots.insert(0, ("Headline: concurrency, delivery success, orders", "plots/headline.png"))
    return plots, warnings


def build(
    endpoints: Endpoints,
    window: RunWindow,
    out_dir: Path | None = None,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    sampled: Figures | None = None,
    criteria_fn: Any = None,
    topologies: tuple[str, ...] | None = None,
    overhead: Overhead | None = None,
    windows: dict[str, RunWindow] | None = None,
    run_order: list[str] | None = None,
) -> tuple[Path, ReportData]:
    """The report of `window`; with `windows` (topology -> its own load's window: the topologies
    ran in turns), each topology is measured over its own turn and drawn on the time since its own
    load started, and `run_order` says why they ran so."""
    out_dir = out_dir or window.folder
    out_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    warnings: list[str] = []
    client_for = client_factory(endpoints)

    results: dict[str, TopologyResult] = {}
    # the topologies `TOPOLOGIES` chose (default: the comparison pair), those the lab runs
    for name in topologies or catalogue.selected():
        if name not in endpoints.topologies:
            continue
        say(f"{name}: reading logs, courier records and queues ...")
        own = (windows or {}).get(name, window)
        results[name] = collect(endpoints.topology(name), own, client_for, settle_seconds, now)
        r = results[name]
        say(f"{name}: {len(r.started)} started, {len(r.accepted)} accepted, "
            + ", ".join(f"{b} {r.ledger.count(b)}" for b in r.ledger.buckets))

    live = prev = None
    try:
        live = live_config(endpoints)
        if window.profile:
            prev = preview(gather(window.profile, endpoints))
    except (ConfigError, Exception) as error:  # noqa: BLE001 - the report is still useful without it
        warnings.append(f"capacity preview unavailable: {error}")

    figures: Figures | None = None
    end = max(window.end, now)
    if endpoints.prometheus_url:
        prom = Prometheus(endpoints.prometheus_url)
        try:
            if windows:
                until = overlay.observed_until(windows, end)
                figures = overlay.pick({n: from_prometheus(prom, endpoints, w.start, until[n]) for n, w in windows.items()})
            else:
                figures = from_prometheus(prom, endpoints, window.start, end)
        except PrometheusError as error:
            warnings.append(str(error))
    figures = merge(figures, sampled)
    say("plotting ...")
    plots, plot_warnings = plot_all(endpoints, window, out_dir, end, results, windows)
    warnings += plot_warnings

    load_sent = load_totals(window.folder)
    for own in (windows or {}).values():
        load_sent.update(load_totals(own.folder))
    for name, (sent, failed) in load_sent.items():
        if failed:
            warnings.append(f"{name}: {failed} of {sent} notify requests got no 2xx answer from the load's view "
                            "(orders the notify-handler still logged as accepted are in the ledger)")
    data = ReportData(
        window=window,
        results=results,
        offered={name: sent for name, (sent, _failed) in load_sent.items()},
        figures=figures,
        preview=prev,
        plots=plots,
        config=configuration(endpoints, window, prev, live),
        warnings=warnings,
        overhead=overhead,
        starts={n: w.start for n, w in (windows or {}).items()},
        ends={n: w.end for n, w in (windows or {}).items()},
        run_order=list(run_order or []),
    )
    if criteria_fn is not None:
        data.criteria = criteria_fn(data, live)
    path = out_dir / "report.md"
    path.write_text(render(data))
    (out_dir / "report.json").write_text(json.dumps(summary(data), indent=2) + "\n")
    say(f"wrote {path}")
    return path, data


def load_totals(folder: Path) -> dict[str, tuple[int, int]]:
    """(sent, failed) per topology from the load's phases.json, when the run folder has one."""
    path = folder / "phases.json"
    if not path.exists():
        return {}
    try:
        rows = json.loads(path.read_text()).get("phases", [])
    except (json.JSONDecodeError, AttributeError):
        return {}
    out: dict[str, tuple[int, int]] = {}
    for row in rows:
        sent, failed = out.get(row.get("topology", "?"), (0, 0))
        out[row.get("topology", "?")] = (sent + int(row.get("sent", 0)), failed + int(row.get("failed", 0)))
    return out


def summary(data: ReportData) -> dict[str, Any]:
    """The headline numbers, machine-readable (for the lead's closing note and for tests)."""
    out: dict[str, Any] = {"run": data.window.folder.name, "profile": data.window.profile, "topologies": {},
                           "order": "in-turns" if data.starts else "side-by-side"}
    if data.starts:
        out["load_started"] = dict(data.starts)  # unix seconds, each topology's own load
    for name, r in data.results.items():
        f = data.figures
        out["topologies"][name] = {
            "started": len(r.started),
            "accepted": len(r.accepted),
            "actual_success": r.actual_success,
            "actual_success_in_load": r.actual_success_in_load,
            "ledger": {b: r.ledger.count(b) for b in r.ledger.buckets},
            "lost_decidable": r.ledger.lost_decidable,
            "duplicates": len(r.duplicates),
            "latency_s": {"p50": r.latency.p50, "p95": r.latency.p95, "p99": r.latency.p99},
            "peak_account_concurrency": f.peak_account_concurrency.get(name) if f else None,
            "peak_delivery_concurrency": f.peak_delivery_concurrency.get(name) if f else None,
            "lambda_throttles": f.lambda_throttles.get(name) if f else None,
        }
    if data.criteria is not None:
        out["criteria"] = [c.__dict__ for c in data.criteria]
        out["reproduced"] = all(c.ok for c in data.criteria)
    return out


def criteria_from(data: ReportData, live: dict[str, Any] | None) -> list[Criterion]:
    """The measured verdict, each criterion beside the simulation's value of it."""
    from report.verdict import beside, check, predict

    limit = float(live["account_limit"]) if live else None
    esm = float(live["esm_max_concurrency"]) if live else 10
    profile = data.window.profile
    sim = data.preview.simulation if data.preview is not None else None
    sim_limit = data.preview.inputs.account_limit if data.preview is not None else None
    criteria = check(data.results, data.figures, limit, esm, profile, sim, sim_limit)
    if sim is not None:
        criteria = beside(criteria, predict(sim, data.preview.inputs.account_limit, esm, profile))
    return criteria
