"""`python -m report experiment`: smoke load on the chosen topologies and the comparison pair,
drain, report, verdict.

The topologies run side by side, or in turns where the machine's cores are too few for both at
once (`report.run_order`, decided by a check measured before the load and printed).

The exit status is the verdict: 0 only when the article is reproduced (see `report.verdict`).
Platform metrics are sampled straight from LocalStack during the run so the verdict does not
depend on Prometheus; Prometheus (when up) adds the plots.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from lab_kernel.settings import REPO_ROOT
from report import build as build_mod
from report.aws_state import client, queue_attributes
from report.calibrate import CalibrationError, machine_cores, measure
from report.capacity import Preview, preview, render_text
from report.config_sources import ConfigError, gather
from lab_kernel import topologies as catalogue
from lab_kernel.endpoints import Endpoints, LabNotUp
from report.figures import PlatformSampler
from report.overhead import PROBE_ACCOUNT, Overhead, Probe, Sample, summarise
from report.run_order import AUTO, IN_TURNS, Decision, Work, decide, turn_order
from report.runs import REPORTS_DIR, RunWindow, from_folder
from report.verdict import NFC, Criterion, predict, reproduced


def say(message: str) -> None:
    print(f"experiment: {message}", flush=True)


@dataclass(frozen=True)
class DrainState:
    queued: dict[str, int]  # topology -> messages in its delivery queue (visible+in flight+delayed), events its API destination holds
    concurrency: dict[str, float]  # topology -> account concurrent executions
    unaccounted: dict[str, float]  # topology -> accepted - delivered - dead-lettered (EMF/platform)
    quiet_for: float  # seconds since any Lambda invocation counter last moved

    def idle(self) -> bool:
        return not any(self.queued.values()) and not any(self.concurrency.values())

    def accounted(self) -> bool:
        return all(v <= 0 for v in self.unaccounted.values())


class Drainer:
    """Waits until the queues are empty and nothing runs, then for quiet.

    Quiet must last `quiet` seconds when every accepted order is already delivered or
    dead-lettered (by the platform's counters; for an API destination, when it holds nothing),
    else `max_quiet` seconds: events can wait unseen in Lambda's async queue between retries
    (throttle back-off up to 300 s, error retries 1-2 min) and no API lists them. Whatever is still
    undecided then is what the ledger reports.
    """

    def __init__(self, endpoints: Endpoints, sampler: PlatformSampler, quiet: float, max_quiet: float = 330.0) -> None:
        self.endpoints = endpoints
        self.sampler = sampler
        self.quiet = quiet
        self.max_quiet = max(max_quiet, quiet)
        self._last_total: float | None = None
        self._last_change = time.time()
        self._baseline = {k: dict(v) for k, v in sampler.latest.items()}
        self._clients: dict[str, object] = {}
        self._dlq_baseline = self._dlq_depths()

    def _dlq_depths(self) -> dict[str, int]:
        """Messages in each topology's SQS dead-letter queue (redrive is no Lambda destination)."""
        out: dict[str, int] = {}
        for name, topology in self.endpoints.topologies.items():
            url = topology.queues.get("dlq")
            if url:
                attrs = queue_attributes(self._sqs(topology), url)
                out[name] = attrs.get("ApproximateNumberOfMessages", 0)
        return out

    def _sqs(self, topology):
        # Polling must not hang on an overloaded emulator: 10 s, one attempt; the loop retries.
        if topology.name not in self._clients:
            self._clients[topology.name] = client(self.endpoints, topology, "sqs", read_timeout=10, attempts=1)
        return self._clients[topology.name]

    def _increase(self, name: str) -> dict[str, float]:
        now = self.sampler.latest.get(name, {})
        before = self._baseline.get(name, {})
        return {t: v - before.get(t, 0.0) for t, v in now.items()}

    def state(self) -> DrainState:
        queued: dict[str, int] = {}
        for name, topology in self.endpoints.topologies.items():
            url = topology.queues.get("delivery")
            if url:
                attrs = queue_attributes(self._sqs(topology), url)
                queued[name] = sum(attrs.values())
        latest = self.sampler.latest
        total = sum(latest.get("invocations_total", {}).values())
        now = time.time()
        if self._last_total is None or total != self._last_total:
            self._last_total = total
            self._last_change = now
        accepted = self._increase("orders_accepted_total")
        delivered = self._increase("orders_delivered_total")
        dead = self._increase("dead_lettered_total")
        dlq = {t: n - self._dlq_baseline.get(t, 0) for t, n in self._dlq_depths().items()}
        unaccounted = {
            t: a - delivered.get(t, 0.0) - dead.get(t, 0.0) - dlq.get(t, 0) for t, a in accepted.items()
        }
        # An API destination has no delivery function to count deliveries, but the platform holds
        # every event it has not yet delivered or dead-lettered: what it holds is what is undecided.
        for t, held in latest.get("api_destination_backlog", {}).items():
            queued[t] = queued.get(t, 0) + int(held)
            if t in self.endpoints.topologies and catalogue.get(t).wiring == catalogue.API_DESTINATION:
                unaccounted[t] = held
        return DrainState(queued, dict(latest.get("peak_account_concurrency", {})), unaccounted, now - self._last_change)

    def wait(self, timeout: float, progress_every: float = 10.0) -> bool:
        started = time.time()
        deadline = started + timeout
        last_print = 0.0
        while True:
            try:
                s = self.state()
            except (BotoCoreError, ClientError) as error:
                now = time.time()
                if now - last_print >= progress_every:
                    say(f"draining {now - started:4.0f} s | LocalStack not answering ({error.__class__.__name__}); waiting")
                    last_print = now
                if now >= deadline:
                    return False
                time.sleep(2.0)
                continue
            needed = self.quiet if s.accounted() else self.max_quiet
            done = s.idle() and s.quiet_for >= needed
            now = time.time()
            if done or now >= deadline or now - last_print >= progress_every:
                parts = [
                    f"{t}: queue {s.queued.get(t, '-')}, running {s.concurrency.get(t, 0):.0f}, "
                    f"unaccounted {max(s.unaccounted.get(t, 0), 0):.0f}"
                    for t in self.endpoints.topologies
                ]
                say(f"draining {now - started:4.0f} s | " + " | ".join(parts) + f" | quiet {s.quiet_for:.0f}/{needed:.0f} s")
                last_print = now
            if done:
                return True
            if now >= deadline:
                return False
            time.sleep(2.0)


# the load's first line names its run folder (load/cli.py): "load: profile ...; reports in <folder>"
_REPORTS_IN = re.compile(r"^load: profile .*; reports in (.+?)\s*$")


def run_load(
    profile: str, reports: Path, endpoints_file: Path | None = None, topology: str = "both",
) -> tuple[int, Path | None, float, float]:
    """Runs one load to its end, its output passed through; (exit, its run folder, start, end).

    The folder is the one the load names in its output: `reports/` is shared, and another load
    started meanwhile (another person's, on their own lab) makes a folder there too."""
    before = {p.name for p in reports.glob("*")} if reports.exists() else set()
    start = time.time()
    command = [sys.executable, "-m", "load", "run", "--profile", profile, "--topology", topology]
    if endpoints_file is not None:
        command += ["--endpoints", str(endpoints_file)]
    say(f"load: {' '.join(command[1:])}")
    named: Path | None = None
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            match = _REPORTS_IN.match(line)
            if match and named is None:
                named = Path(match.group(1))
        code = process.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the load (same process group) too; let it write its reports.
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:  # only the process this function started
            process.terminate()
            process.wait(timeout=30)
    end = time.time()
    if named is not None and named.is_dir():
        return code, named, start, end
    # an older load that does not name its folder: the newest new one of this profile and topology
    new = sorted(p for p in reports.glob(f"*-{profile}-{topology}") if p.is_dir() and p.name not in before)
    return code, (new[-1] if new else None), start, end


def _wait_first_sample(sampler: PlatformSampler, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while sampler.samples == 0 and time.time() < deadline:
        time.sleep(0.5)
    if sampler.samples == 0:
        say(f"warning: no sample of /_lab/metrics yet ({sampler.last_error or 'no answer'})")


def choose_order(endpoints: Endpoints, prev: Preview | None, requested: str, chosen: tuple[str, ...]) -> Decision:
    """The run order (`report.run_order`): the simulated work of the chosen topologies priced at
    the CPU measured on this machine now (`report.calibrate`), against its cores. Measured even
    when the order is forced, so the report says what the check would have chosen."""
    cores = machine_cores()
    sim = prev.simulation if prev is not None else None
    work = [Work(t.topology, t.invocations_per_second, t.refusals_per_second)
            for name, t in (sim.topologies.items() if sim is not None else ()) if name in chosen]
    cost = None
    if work and NFC in endpoints.topologies:
        try:
            cost = measure(endpoints, endpoints.topology(NFC), say)
            say(f"calibration: {cost.source}")
        except CalibrationError as error:
            say(f"calibration failed ({error}): the run order is not measured")
    limit = prev.inputs.account_limit if prev is not None else None
    profile = prev.inputs.profile if prev is not None else ""
    return decide(requested, work, cost, cores, profile, limit)


@dataclass
class Turn:
    """One load and its drain: both topologies at once, or one of them alone."""

    topology: str  # the topology that ran alone, or the chosen ones comma-separated (side by side)
    code: int
    folder: Path | None
    start: float
    end: float


def experiment(
    endpoints: Endpoints,
    profile: str = "smoke",
    drain_timeout: float | None = None,
    quiet: float = 150.0,
    endpoints_file: Path | None = None,
    order: str = AUTO,
    check_only: bool = False,
) -> int:
    # the chosen topologies and the pair they are judged against, in the catalogue's order
    chosen = catalogue.catalogue().with_pair(catalogue.selected())
    missing = [t for t in chosen if t not in endpoints.topologies]
    if missing:
        raise LabNotUp(f"{', '.join(missing)} not up (the lab runs {', '.join(endpoints.topologies)}): "
                       f"run `make down`, then `{catalogue.SELECTION_VARIABLE}={','.join(chosen)} make up`")
    predicted_drain = None
    prev = None
    try:
        prev = preview(gather(profile, endpoints))
        print(render_text(prev), flush=True)
        predicted_drain = prev.flow_control.drain_seconds
        if prev.simulation is not None:
            # the longest simulated drain among the chosen topologies: with the catalogue, the
            # breaker's parked orders outlast the queue's backlog (44 min after the smoke load)
            predicted_drain = max([predicted_drain, *(run.last_delivery_after_load for name, run
                                                      in prev.simulation.topologies.items() if name in chosen)])
            expected = predict(prev.simulation, prev.inputs.account_limit, prev.inputs.esm_max_concurrency, profile)
            for c in expected:
                say(f"predicted {'ok  ' if c.ok else 'FAIL'} {c.topology}: {c.name}: {c.measured}")
            say(f"the simulation predicts the article is {'' if reproduced(expected) else 'NOT '}reproduced "
                "(on an ideal platform; the run below measures it)")
    except ConfigError as error:
        say(f"capacity preview unavailable: {error}")
    if drain_timeout is None:
        # the predicted drain of the remedy's backlog, with room for the model being rough
        # (measured: on a saturated 2-core machine the smoke backlog took 3x the predicted time)
        drain_timeout = max(900.0, 3 * (predicted_drain or 0) + 330 + 120)
    # before the sampler and the drainer take their baselines: the calibration's own orders and
    # 429s are then no part of the run's counts
    decision = choose_order(endpoints, prev, order, chosen)
    say(f"run order: {decision.reason}")
    if check_only:
        return 0
    # in turns, the storm's topology first (the catalogue's order): the overhead probe measures
    # the emulator beside it; then the shortest drains, so a drain cut short loads no later turn.
    # Side by side, one load drives every chosen topology at once
    together = catalogue.BOTH if chosen == catalogue.catalogue().pair else ",".join(chosen)
    drains = ({name: run.last_delivery_after_load for name, run in prev.simulation.topologies.items()}
              if prev is not None and prev.simulation is not None else None)
    plan = turn_order(chosen, drains) if decision.in_turns else [together]
    if decision.in_turns and plan != list(chosen):
        say(f"turns: {', '.join(plan)} (the longest simulated drains last)")
    delivery = next(iter(endpoints.topologies.values())).functions["delivery"]
    sampler = PlatformSampler(endpoints.localstack_urls, delivery).start()
    probe, idle, overhead = _start_probe(endpoints)
    probing = False
    turns: list[Turn] = []
    try:
        _wait_first_sample(sampler)
        for number, topology in enumerate(plan, 1):
            if len(plan) > 1:
                say(f"turn {number}/{len(plan)}: {topology} alone")
            drainer = Drainer(endpoints, sampler, quiet)  # baseline counters before the load
            beside_storm = probe is not None and (not decision.in_turns or topology == NFC)
            if beside_storm:
                probe.start()
                probing = True
            code, folder, start, end = run_load(profile, REPORTS_DIR, endpoints_file, topology)
            if beside_storm:
                overhead = summarise(idle, probe.stop(), start)
                probing = False
                say(overhead_line(overhead))
            turns.append(Turn(topology, code, folder, start, end))
            if folder is None:
                say(f"the load wrote no run folder under {REPORTS_DIR} (exit {code})")
                return 2
            say(f"load finished with exit {code} after {end - start:.0f} s; draining (timeout {drain_timeout:.0f} s)")
            drained = drainer.wait(drain_timeout)
            if not drained:
                say("drain timed out: the report counts what is still queued as in flight")
            if code not in (0, 1):
                break  # no valid run: the next turn would not make one
    finally:
        figures = sampler.stop()
        if probe is not None:
            if probing:
                probe.stop()
            probe.teardown()
    if sampler.samples == 0:
        say(f"no sample of /_lab/metrics at {', '.join(endpoints.localstack_urls)} ({sampler.last_error}): concurrency unmeasured")
    windows = None
    if decision.in_turns:
        windows = {t.topology: from_folder(t.folder) for t in turns if t.folder is not None}
        window = from_folder(combined_folder(profile, windows, run_order=[decision.reason]))
    else:
        window = from_folder(turns[0].folder)
    path, data = build_mod.build(
        endpoints, window, settle_seconds=quiet, sampled=figures, criteria_fn=build_mod.criteria_from,
        overhead=overhead, windows=windows, run_order=[decision.reason],
    )
    criteria = data.criteria or []
    print(verdict_table(criteria), flush=True)
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    # Locust exits 1 when any request failed: the run happened and the report counts what was
    # accepted. Anything else (2: bad configuration, 130: interrupted) means no valid run.
    failed = [t for t in turns if t.code not in (0, 1)]
    if failed or len(turns) < len(plan):
        which = ", ".join(f"{t.topology} exit {t.code}" for t in failed) or "a turn did not run"
        say(f"the load did not run to its end ({which}): no verdict; report: {shown}")
        return 2
    ok = reproduced(criteria)
    say(f"{'REPRODUCED' if ok else 'NOT reproduced'}; report: {shown}")
    return 0 if ok else 1


def combined_folder(
    profile: str, windows: dict[str, RunWindow], reports: Path = REPORTS_DIR, run_order: list[str] | None = None,
) -> Path:
    """The folder of a run in turns: its report, and a phases.json naming each turn's own folder
    (`report.runs.turns` reads it back, so `make report` rebuilds it the same way)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(max(w.end for w in windows.values())))
    folder = reports / f"{stamp}-{profile}-in-turns"
    folder.mkdir(parents=True, exist_ok=True)
    phases = []
    for w in windows.values():
        try:
            phases += json.loads((w.folder / "phases.json").read_text()).get("phases", [])
        except (OSError, json.JSONDecodeError, AttributeError):
            pass
    (folder / "phases.json").write_text(json.dumps({
        "profile": profile,
        "order": IN_TURNS,
        "started_at": min(w.start for w in windows.values()),
        "ended_at": max(w.end for w in windows.values()),
        "turns": {name: w.folder.name for name, w in windows.items()},
        "run_order": list(run_order or []),  # why in turns: a rebuilt report says it again
        "phases": phases,
    }, indent=2) + "\n")
    return folder


def _start_probe(endpoints: Endpoints) -> tuple[Probe | None, list[Sample], Overhead | None]:
    """The overhead probe on the storm's LocalStack, with its idle baseline taken before the load."""
    storm = endpoints.topologies.get(catalogue.catalogue().storm)
    url = (storm.localstack_url if storm else "") or endpoints.localstack_url
    try:
        probe = Probe(url).provision()
        idle = probe.idle()
    except (BotoCoreError, ClientError, OSError) as error:
        say(f"overhead probe unavailable ({error.__class__.__name__}: {error}): the emulator's overhead is not measured")
        return None, [], None
    say(f"overhead probe in account {PROBE_ACCOUNT} on {url}: idle baseline taken")
    return probe, idle, None


def overhead_line(overhead: Overhead | None) -> str:
    worst = overhead.worst() if overhead else None
    if overhead is None or worst is None:
        return "overhead probe: no figure"
    verdict = {True: "the emulator kept up", False: "the emulator was a second boundary in this run"}[bool(overhead.within_bounds())]
    return (f"overhead probe, worst minute ({worst.minute}): Lambda invoke p50 {worst.invoke_p50 * 1000:.0f} ms "
            f"({worst.invoke_p50 / overhead.idle_invoke_p50:.1f}x idle), API Gateway p50 {worst.api_p50 * 1000:.0f} ms "
            f"({worst.api_p50 / overhead.idle_api_p50:.1f}x idle); {overhead.failed} failed: {verdict}")


def verdict_table(criteria: list[Criterion]) -> str:
    """The verdict as a fixed-width table: criterion, the simulation's value, the measured one."""
    rows = [("topology", "criterion", "predicted", "measured", "source", "holds")]
    rows += [(c.topology, c.name, c.predicted or "-", c.measured, c.source or "-", "yes" if c.ok else "NO")
             for c in criteria]
    widths = [min(max(len(r[i]) for r in rows), 60) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell[:60].ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
