"""Headline platform figures per topology over a run: peaks and counter increases.

Read from Prometheus when it is there; the experiment also samples LocalStack's own
`/_lab/metrics` endpoint while it runs (`PlatformSampler`), so its verdict does not depend on a
scraper being up.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import requests
from prometheus_client.parser import text_string_to_metric_families

from lab_kernel.endpoints import Endpoints
from lab_kernel.topologies import catalogue
from report.prom import Prometheus

ACCOUNT_TOPOLOGY = catalogue().by_account()  # account -> topology (lab_kernel/topologies.toml)


@dataclass
class Figures:
    """Per topology; missing keys mean the metric was not seen."""

    peak_account_concurrency: dict[str, float] = field(default_factory=dict)
    peak_delivery_concurrency: dict[str, float] = field(default_factory=dict)
    account_limit: dict[str, float] = field(default_factory=dict)
    lambda_throttles: dict[str, float] = field(default_factory=dict)
    courier_429: dict[str, float] = field(default_factory=dict)
    courier_calls: dict[str, float] = field(default_factory=dict)  # the delivery function's attempts
    delivery_invocations: dict[str, float] = field(default_factory=dict)
    delivery_errors: dict[str, float] = field(default_factory=dict)
    throttles_by_function: dict[str, dict[str, float]] = field(default_factory=dict)  # topology -> fn -> n
    # lowest share of delivery invocations that succeeded in any minute with >= 10 of them: where
    # the article's "Delivery Lambda Success" graph bottoms out (about 20% without flow control)
    lowest_delivery_success: dict[str, float] = field(default_factory=dict)
    source: str = ""


# Counters are read as their points every 5 s (Prometheus scrapes every 5 s), so a restart between
# two points is seen; an 18-minute run is about 220 points a series.
COUNTER_STEP = 5.0


def from_prometheus(prom: Prometheus, endpoints: Endpoints, start: float, end: float) -> Figures:
    any_topology = next(iter(endpoints.topologies.values()))
    delivery = any_topology.functions["delivery"]
    r = f"{max(int(end - start), 10)}s"
    # counter points on a 5 s grid that ends exactly at the run's end (its last counts included)
    first = end - math.ceil((end - start) / COUNTER_STEP) * COUNTER_STEP

    def delta(query: str) -> dict[str, float]:
        return {s.labels.get("topology", ""): s.counted(first, COUNTER_STEP)
                for s in prom.range(query, first, end, COUNTER_STEP)}

    figures = Figures(
        peak_account_concurrency=prom.by_topology(f"max by (topology) (max_over_time(lab_lambda_account_concurrent_executions[{r}]))", end),
        peak_delivery_concurrency=prom.by_topology(
            f'max by (topology) (max_over_time(lab_lambda_concurrent_executions{{function_name="{delivery}"}}[{r}]))', end
        ),
        account_limit=prom.by_topology(f"max by (topology) (max_over_time(lab_lambda_account_concurrency_limit[{r}]))", end),
        lambda_throttles=delta("sum by (topology) (lab_lambda_throttles_total)"),
        courier_429=delta("sum by (topology) (lab_apigateway_throttled_total)"),
        courier_calls=delta("sum by (topology) (emf_delivery_attempts_total)"),
        delivery_invocations=delta(f'sum by (topology) (lab_lambda_invocations_total{{function_name="{delivery}"}})'),
        delivery_errors=delta(f'sum by (topology) (lab_lambda_errors_total{{function_name="{delivery}"}})'),
        throttles_by_function=_per_function(prom, "sum by (topology, function_name) (lab_lambda_throttles_total)", first, end),
        lowest_delivery_success=prom.by_topology(_lowest_success_query(delivery, r), end),
        source=f"Prometheus {prom.url}",
    )
    # A labelled counter exists only after its first increment: where the topology's platform was
    # scraped (its account limit is there) and no throttle or 429 series is, none happened.
    for counted in (figures.lambda_throttles, figures.courier_429):
        for topology in figures.account_limit:
            counted.setdefault(topology, 0.0)
    return figures


def _lowest_success_query(function: str, window: str) -> str:
    def per_minute(metric: str) -> str:
        return f'sum by (topology) (increase({metric}{{function_name="{function}"}}[1m]))'

    invocations = per_minute("lab_lambda_invocations_total")
    # no error series until the first error: 0 errors then, not "no data"
    errors = f"({per_minute('lab_lambda_errors_total')} or 0 * {invocations})"
    share = f"1 - {errors} / ({invocations} >= 10)"
    return f"min by (topology) (min_over_time(({share})[{window}:30s]))"


def _per_function(prom: Prometheus, query: str, start: float, end: float) -> dict[str, dict[str, float]]:
    """A counter's increase per (topology, function): which function the account limit starved."""
    out: dict[str, dict[str, float]] = {}
    for s in prom.range(query, start, end, COUNTER_STEP):
        out.setdefault(s.labels.get("topology", ""), {})[s.labels.get("function_name", "")] = s.counted(start, COUNTER_STEP)
    return out


def scrape(url: str, timeout: float = 5.0) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """LocalStack's `/_lab/metrics` as {sample name: {sorted labels: value}}."""
    response = requests.get(f"{url.rstrip('/')}/_lab/metrics", timeout=timeout)
    response.raise_for_status()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _by_topology(samples: dict[tuple[tuple[str, str], ...], float], **match: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for labels, value in samples.items():
        d = dict(labels)
        if any(d.get(k) != v for k, v in match.items()):
            continue
        topology = ACCOUNT_TOPOLOGY.get(d.get("account", ""), d.get("account", ""))
        totals[topology] = totals.get(topology, 0.0) + value
    return totals


class PlatformSampler:
    """Polls `/_lab/metrics` in a thread: peaks (gauges) and first/last counters per topology."""

    def __init__(self, urls: str | list[str], delivery_function: str, interval: float = 2.0) -> None:
        # one LocalStack per topology by default; each exports only its own accounts' series
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.delivery = delivery_function
        self.interval = interval
        where = ", ".join(f"{u}/_lab/metrics" for u in self.urls)
        self.figures = Figures(source=f"{where} sampled every {interval:g} s")
        self._first: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-metrics-sampler", daemon=True)
        self.latest: dict[str, dict[str, float]] = {}  # last scrape: gauge name -> topology -> value
        self.latest_at = 0.0
        self.samples = 0
        self.errors = 0
        self.last_error = ""

    def start(self) -> PlatformSampler:
        self._thread.start()
        return self

    def stop(self) -> Figures:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.figures

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception as error:  # noqa: BLE001 - keep sampling; the count is reported
                self.errors += 1
                self.last_error = f"{error.__class__.__name__}: {error}"
            self._stop.wait(self.interval)

    def sample_once(self) -> None:
        m: dict[str, dict] = {}
        for url in self.urls:
            for name, series in scrape(url).items():
                m.setdefault(name, {}).update(series)
        f = self.figures
        gauges = {
            "peak_account_concurrency": _by_topology(m.get("lab_lambda_account_concurrent_executions", {})),
            "peak_delivery_concurrency": _by_topology(m.get("lab_lambda_concurrent_executions", {}), function_name=self.delivery),
            "account_limit": _by_topology(m.get("lab_lambda_account_concurrency_limit", {})),
        }
        self.latest = {**gauges, **{k: v for k, v in counters_now(m, self.delivery).items()}}
        self.latest_at = time.time()
        for name, values in gauges.items():
            peaks = getattr(f, name)
            for topology, value in values.items():
                peaks[topology] = max(peaks.get(topology, 0.0), value)
        counters = {
            "lambda_throttles": _by_topology(m.get("lab_lambda_throttles_total", {})),
            "courier_429": _by_topology(m.get("lab_apigateway_throttled_total", {})),
            "courier_calls": _by_topology(m.get("emf_delivery_attempts_total", {})),
            "delivery_invocations": _by_topology(m.get("lab_lambda_invocations_total", {}), function_name=self.delivery),
            "delivery_errors": _by_topology(m.get("lab_lambda_errors_total", {}), function_name=self.delivery),
        }
        for name, values in counters.items():
            first = self._first.setdefault(name, dict(values))
            increases = getattr(f, name)
            for topology, value in values.items():
                increases[topology] = max(0.0, value - first.setdefault(topology, 0.0))
        self.samples += 1


def counters_now(m: dict, delivery: str) -> dict[str, dict[str, float]]:
    """Raw counter totals, for the drain's "has anything happened lately" test, and what the API
    destinations still hold (a gauge: the drain's "is anything still waiting")."""
    destinations = m.get("lab_lambda_destination_deliveries_total", {})
    dead = {
        k: v for k, v in destinations.items() if dict(k).get("destination_type") in ("on_failure", "dlq")
    }
    return {
        "delivery_invocations_total": _by_topology(m.get("lab_lambda_invocations_total", {}), function_name=delivery),
        "invocations_total": _by_topology(m.get("lab_lambda_invocations_total", {})),
        "orders_accepted_total": _by_topology(m.get("emf_orders_accepted_total", {})),
        "orders_delivered_total": _by_topology(m.get("emf_orders_delivered_total", {})),
        "dead_lettered_total": _by_topology(dead),
        "api_destination_backlog": _by_topology(m.get("lab_events_api_destination_backlog", {})),
    }


def merge(primary: Figures | None, fallback: Figures | None) -> Figures | None:
    """Prometheus' figures, with gaps filled from the sampler (peaks: the larger of the two)."""
    if primary is None or fallback is None:
        return primary or fallback
    out = Figures(source=f"{primary.source}; {fallback.source}")
    for name in ("peak_account_concurrency", "peak_delivery_concurrency", "account_limit"):
        a, b = getattr(primary, name), getattr(fallback, name)
        setattr(out, name, {t: max(a.get(t, 0.0), b.get(t, 0.0)) for t in set(a) | set(b)})
    for name in ("lambda_throttles", "courier_429", "courier_calls", "delivery_invocations", "delivery_errors"):
        a, b = getattr(primary, name), getattr(fallback, name)
        setattr(out, name, {t: a.get(t, b.get(t, 0.0)) for t in set(a) | set(b)})
    out.throttles_by_function = primary.throttles_by_function or fallback.throttles_by_function
    # a minimum: the lower of the two wherever either source measured one
    a, b = primary.lowest_delivery_success, fallback.lowest_delivery_success
    out.lowest_delivery_success = {t: min(a.get(t, 1.0), b.get(t, 1.0)) for t in set(a) | set(b)}
    return out

