"""`python -m resilience.verify [FILE ...]`: continuous verification against the running lab.

For each experiment (resilience/experiments/*.toml, format in experiments_model.py): apply the
condition (fault documents in SSM), optionally send orders, sample the measure in Prometheus after
the warmup, revert the condition, print PASS/FAIL. Exit status: 0 all passed, 1 a fail, 2 bad
input, 130 interrupted.

Faults are always reverted: a try/finally restores each function's previous fault document (or
removes it), SIGINT/SIGTERM/SIGHUP are turned into an exception so the finally runs, and every
document verify writes carries `expires_at` = end of the experiment + 60 s, so even a SIGKILLed
verify leaves nothing active for long.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from lab_faults.config import now_utc
from resilience import faults_store
from resilience.experiments_model import Condition, Experiment, ExperimentError, load_experiment
from resilience.lab import Lab, LabError, load_lab

EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"
EXPIRY_MARGIN_S = 60


class Interrupted(Exception):
    """A signal arrived; raised in the main thread so every finally (fault revert) runs."""


@contextmanager
def signals_raise() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class Sample:
    at_s: float
    value: float | None
    ok: bool


@dataclass
class Result:
    experiment: Experiment
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        with_data = [s for s in self.samples if s.value is not None]
        return self.error is None and bool(with_data) and all(s.ok for s in self.samples)


def query_prometheus(base_url: str, promql: str, timeout: float = 10) -> list[float]:
    """Instant query; the values of every series (NaN dropped). Raises on a Prometheus error."""
    url = f"{base_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=timeout) as response:
        payload = json.loads(response.read())
    if payload.get("status") != "success":
        raise RuntimeError(f"Prometheus query failed: {payload.get('error', payload)}")
    data = payload["data"]
    if data["resultType"] == "scalar":
        values = [float(data["result"][1])]
    else:
        values = [float(series["value"][1]) for series in data["result"]]
    return [v for v in values if not math.isnan(v)]


def injected_faults(prometheus_url: str, experiment: Experiment, seconds: float) -> str:
    """How many faults the functions reported injecting during the run (EMF FaultInjected):
    shown with the verdict so a pass is never the result of a condition that did not apply."""
    where = "" if experiment.topology == "both" else f'{{topology="{experiment.topology}"}}'
    promql = f"sum by (mode) (increase(emf_fault_injected_total{where}[{max(1, int(seconds))}s]))"
    try:
        values = query_prometheus_series(prometheus_url, promql)
    except Exception as exc:  # noqa: BLE001 - evidence is informative, not the verdict
        return f"unavailable ({exc})"
    values = {mode: value for mode, value in values.items() if value >= 0.5}  # earlier runs' series
    if not values:
        return "no injected fault reported (emf_fault_injected_total)"
    return ", ".join(f"{mode}: {value:.0f} injected" for mode, value in sorted(values.items()))


def query_prometheus_series(base_url: str, promql: str) -> dict[str, float]:
    url = f"{base_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        payload = json.loads(response.read())
    return {s["metric"].get("mode", "?"): float(s["value"][1])
            for s in payload.get("data", {}).get("result", [])}


class Conditions:
    """Applies fault documents and remembers what was there before, to put it back exactly."""

    def __init__(self, lab: Lab, topology: str, conditions: tuple[Condition, ...], hold_s: float) -> None:
        self.lab = lab
        self.topology = topology
        self.conditions = conditions
        self.hold_s = hold_s  # how long the condition is meant to hold; it expires a minute after
        self.saved: list[tuple[Any, str, dict[str, Any] | None]] = []

    def apply(self) -> None:
        expires = now_utc() + timedelta(seconds=self.hold_s + EXPIRY_MARGIN_S)
        for topology in self.lab.select(self.topology):
            ssm = self.lab.client("ssm", topology)
            for condition in self.conditions:
                function = topology.function(condition.function)
                previous = faults_store.read(ssm, function)
                self.saved.append((ssm, function, previous))  # before writing: revert covers it
                faults_store.write(ssm, function, {**condition.document, "enabled": True,
                                                   "expires_at": expires.isoformat()})

    def revert(self) -> list[str]:
        problems = []
        for ssm, function, previous in reversed(self.saved):
            try:
                if previous is None or "_unparseable" in previous:
                    faults_store.delete(ssm, function)
                else:
                    faults_store.write(ssm, function, previous)
            except Exception as exc:  # noqa: BLE001 - keep reverting the others
                problems.append(f"could not revert {function}: {exc}")
        self.saved.clear()
        return problems


class Traffic(threading.Thread):
    """Orders at a fixed arrival rate to each selected topology's notify URL (open loop: a slow
    answer does not delay the next order, as with real customers, so latency cannot hide load)."""

    def __init__(self, urls: list[str], rate_per_s: float, max_in_flight: int = 32) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.period = 1.0 / rate_per_s
        self.stopped = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="verify-order")
        self.sent = 0
        self.errors = 0
        self._lock = threading.Lock()

    def _post(self, url: str) -> None:
        body = json.dumps({"order_id": f"verify-{uuid.uuid4().hex[:12]}", "item": "verify"})
        request = urllib.request.Request(url, data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30):
                ok = True
        except Exception:  # noqa: BLE001 - errors are part of what is measured
            ok = False
        with self._lock:
            self.sent += ok
            self.errors += not ok

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stopped.is_set():
            for url in self.urls:
                self.pool.submit(self._post, url)
            next_at += self.period
            self.stopped.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)
        self.pool.shutdown(wait=True, cancel_futures=True)


def run_experiment(lab: Lab, prometheus_url: str, experiment: Experiment, say: Any,
                   traffic_enabled: bool = True) -> Result:
    result = Result(experiment)
    conditions = Conditions(lab, experiment.topology, experiment.conditions, experiment.duration_s)
    traffic: Traffic | None = None
    try:
        conditions.apply()
        say(f"  condition on: {', '.join(c.function for c in experiment.conditions)} "
            f"({experiment.topology}) for {experiment.duration_s:g} s")
        if traffic_enabled and experiment.traffic_rate_per_s > 0:
            urls = [t.notify_url for t in lab.select(experiment.topology) if t.notify_url]
            if not urls:
                raise LabError("traffic asked for but no notify_url in .lab/endpoints.json")
            traffic = Traffic(urls, experiment.traffic_rate_per_s)
            traffic.start()
        start = time.monotonic()
        time.sleep(experiment.warmup_s)
        while True:
            elapsed = time.monotonic() - start
            values = query_prometheus(prometheus_url, experiment.query)
            value = experiment.worst(values) if values else None
            ok = value is not None and experiment.passes(value)
            result.samples.append(Sample(round(elapsed, 1), value, ok))
            shown = "no data" if value is None else f"{value:.4g}"
            say(f"  t={elapsed:5.1f}s measure={shown} ({'ok' if ok else 'violates'} "
                f"{experiment.comparison} {experiment.threshold:g})")
            if elapsed + experiment.interval_s > experiment.duration_s:
                break
            time.sleep(experiment.interval_s)
        say(f"  evidence: {injected_faults(prometheus_url, experiment, time.monotonic() - start)}")
    except Interrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - report it as this experiment's failure
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        # a second Ctrl-C must not cut the revert short: hold the signals until it is done
        # (a held signal is delivered right after, and then interrupts the run as usual)
        held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            for problem in conditions.revert():  # first: faults must not outlive the run
                say(f"  WARNING {problem}")
            say("  condition reverted")
            if traffic is not None:
                traffic.stop()
                say(f"  traffic: {traffic.sent} orders answered, {traffic.errors} failed")
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
    return result


def describe(result: Result) -> str:
    e = result.experiment
    verdict = "PASS" if result.passed else "FAIL"
    values = [s.value for s in result.samples if s.value is not None]
    detail = result.error or (
        f"worst {e.worst(values):.4g} {e.comparison} {e.threshold:g} required over "
        f"{len(result.samples)} sample(s)" if values else "no data for the measure"
    )
    return f"{verdict} {e.name}: {e.objective} [{detail}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resilience.verify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="*", type=Path,
                        help="experiment files (default: resilience/experiments/*.toml)")
    parser.add_argument("--endpoint-url", help="LocalStack URL (default: .lab/endpoints.json)")
    parser.add_argument("--prometheus-url", help="default: .lab/endpoints.json or settings")
    parser.add_argument("--no-traffic", action="store_true",
                        help="do not send orders (e.g. `make load` is already running)")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    files = args.experiments or sorted(EXPERIMENTS_DIR.glob("*.toml"))
    try:
        experiments = [load_experiment(Path(f)) for f in files]  # all checked before any fault
        if not experiments:
            raise ExperimentError(f"no experiments found in {EXPERIMENTS_DIR}")
        lab = load_lab(args.endpoint_url)
        prometheus = args.prometheus_url or lab.prometheus_url
        if not prometheus:
            raise LabError("no Prometheus URL: pass --prometheus-url or run `make up`")
    except (ExperimentError, LabError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = []
    with signals_raise():
        try:
            for experiment in experiments:
                say(f"experiment {experiment.name} ({experiment.path.name})")
                results.append(run_experiment(lab, prometheus, experiment, say,
                                              traffic_enabled=not args.no_traffic))
        except Interrupted as exc:
            say(f"interrupted by {exc}: faults reverted")
            for result in results:
                say(describe(result))
            return 130
    say("")
    for result in results:
        say(describe(result))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
