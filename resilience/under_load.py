"""`python -m resilience.under_load [--faults ...]`: faults during a load lose no order.

AWS delivers at least once: a failed asynchronous invocation is retried (twice, then sent to the
on-failure destination), an SQS message whose batch failed comes back after its visibility timeout
(and goes to the DLQ after maxReceiveCount receives). So a crash, an outage or the kill switch in
the middle of a storm must end with every accepted order delivered, dead-lettered or still in
flight, and counted. Each fault below runs in a load of its own on every topology (the smoke
profile by default), starting `--start` seconds into the load; then the lab drains and the
report's ledger is read per topology:

    crash         crash mode at 10% on the delivery function (the environment is SIGKILLed
                  before the handler runs; AWS reports Runtime.ExitError), 60 s
    sigkill       a delivery environment of each topology killed from outside with SIGKILL every
                  2 s (as the out-of-memory killer would), 60 s
    courier-down  every courier call answers 503, 60 s
    kill-switch   the kill switch on the delivery function (reserved concurrency 0; the SQS
                  mapping paused), 30 s, then off

A fault passes when, in every topology, the fault took effect (injected, killed or throttled,
counted), lost is 0 and decidable, and accepted = delivered + dead-lettered + in flight.
Duplicates are counted, not failures: at-least-once delivery makes them. Everything goes to
`reports/faults-<time>/`: each run's folder with its report (the ledger is in it), and
`summary.md` (+ `.json`), the table of all of them. Exit status: 0 all passed, 1 a fail, 2 bad
input, 130 interrupted (every fault is reverted first; fault documents also carry an expiry).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lab_platform.executor.environments import environments
from labctl import mode as lab_mode
from labctl import processes
from lab_kernel.settings import LOCALSTACK_BY_TOPOLOGY, REPO_ROOT, Settings
from load.profiles import PROFILES_FILE, ProfileError, get_profile
from report import build as build_mod
from lab_kernel.endpoints import Endpoints, LabNotUp, default_path
from lab_kernel.endpoints import load as load_endpoints
from report.experiment import Drainer, _wait_first_sample
from report.figures import PlatformSampler, scrape
from report.runs import REPORTS_DIR, RunError, from_folder
from report.verdict import Criterion
from resilience import kill_switch
from resilience.experiments_model import Condition
from resilience.lab import Lab, LabError, load_lab
from resilience.verify import Conditions, Interrupted, signals_raise

KILL_EVERY_S = 2.0


def say(message: str) -> None:
    print(f"faults: {message}", flush=True)


@dataclass(frozen=True)
class Fault:
    name: str
    what: str  # one line for the table
    hold_s: float
    conditions: tuple[Condition, ...] = ()  # fault documents (lab_faults), if that is the fault
    evidence_mode: str | None = None  # the FaultInjected mode that shows it took effect


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("crash", "delivery environments crash at 10% (crash mode: SIGKILL before the handler)", 60,
          (Condition("delivery", {"faults": {"crash": {"rate": 0.1, "how": "kill", "when": "before"}}}),),
          evidence_mode="crash"),
    Fault("sigkill", f"a delivery environment per topology SIGKILLed from outside every {KILL_EVERY_S:g} s", 60),
    Fault("courier-down", "the courier answers 503 to every call", 60,
          (Condition("courier", {"faults": {"status_code": {
              "rate": 1.0, "status_code": 503, "body": {"message": "Service Unavailable (injected)"}}}}),),
          evidence_mode="status_code"),
    Fault("kill-switch", "kill switch on the delivery function (reserved concurrency 0), then off", 30),
)}


@dataclass
class FaultRun:
    fault: Fault
    report: Path | None = None
    ledgers: dict[str, dict[str, int]] = field(default_factory=dict)  # topology -> bucket -> orders
    decidable: dict[str, bool] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    effect: dict[str, str] = field(default_factory=dict)  # topology -> what shows the fault applied
    took_effect: dict[str, bool] = field(default_factory=dict)
    error: str | None = None

    def criteria(self) -> list[Criterion]:
        out = []
        for topology, ledger in self.ledgers.items():
            accepted = sum(ledger.values())
            accounted = ledger["delivered"] + ledger["dead_lettered"] + ledger["in_flight"]
            out += [
                Criterion(topology, f"{self.fault.name}: the fault took effect", self.effect.get(topology, "-"),
                          self.took_effect.get(topology, False), "resilience.under_load"),
                Criterion(topology, f"{self.fault.name}: no order lost",
                          f"lost {ledger['lost']}" + ("" if self.decidable.get(topology) else " (not decidable yet)"),
                          ledger["lost"] == 0 and self.decidable.get(topology, False), "ledger"),
                Criterion(topology, f"{self.fault.name}: accepted = delivered + dead-lettered + in flight",
                          f"{accepted} = {ledger['delivered']} + {ledger['dead_lettered']} + {ledger['in_flight']}",
                          accepted == accounted and accepted > 0, "ledger"),
            ]
        return out

    def record(self, data: Any) -> list[Criterion]:
        """The report's ledgers (report.build's data), kept; the criteria go into its report."""
        for name, result in data.results.items():
            self.ledgers[name] = {b: result.ledger.count(b) for b in result.ledger.buckets}
            self.decidable[name] = result.ledger.lost_decidable
            self.duplicates[name] = len(result.duplicates)
        return self.criteria()

    @property
    def passed(self) -> bool:
        criteria = self.criteria()
        return self.error is None and bool(criteria) and all(c.ok for c in criteria)


# --- killing environments from outside ---------------------------------------------------------

def localstack_roots(endpoints: Endpoints) -> dict[str, int]:
    """Topology -> PID of the process its environments descend from: its LocalStack (host mode)
    or its LocalStack container's first process (compose mode, as the host's /proc shows it)."""
    settings = Settings.load()
    per_topology = settings.get("LAB_LOCALSTACK_PER_TOPOLOGY", "1") not in ("0", "false", "no", "off")
    roots: dict[str, int] = {}
    for topology in endpoints.topologies:
        name, _port = LOCALSTACK_BY_TOPOLOGY.get(topology, (None, None))
        if name is None or not per_topology:
            name = "localstack"
        if lab_mode.last() == "docker":
            roots[topology] = _container_pid(settings, name)
        else:
            process = processes.running(name)
            if process is None:
                raise LabError(f"no running {name} process recorded in .lab/pids: run `make up`")
            roots[topology] = process.pid
    return roots


def _container_pid(settings: Settings, service: str) -> int:
    from labctl import compose  # only in compose mode

    command = [*compose.command(settings), "ps", "-q", service]
    container = subprocess.run(command, capture_output=True, text=True, env=compose.environment(settings),
                               check=False).stdout.strip()
    if not container:
        raise LabError(f"no running container for compose service {service}: run `make up`")
    pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True,
                         text=True, check=False).stdout.strip()
    if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
        raise LabError("the container's processes are not visible from here (Docker Desktop runs them in a VM): "
                       "run the sigkill fault with LAB_MODE=host")
    return int(pid)


class EnvironmentKiller(threading.Thread):
    """Every `every` s, SIGKILLs one of the function's execution environments in each topology."""

    def __init__(self, roots: dict[str, int], function_of: dict[str, str], every: float = KILL_EVERY_S,
                 rng: random.Random | None = None) -> None:
        super().__init__(name="environment-killer", daemon=True)
        self.roots = roots
        self.function_of = function_of
        self.every = every
        self.rng = rng or random.Random()
        self.killed = {topology: 0 for topology in roots}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            for topology, root in self.roots.items():
                found = environments(self.function_of[topology], under=root)
                if not found:
                    continue
                victim = self.rng.choice(found)
                try:
                    os.kill(victim.pid, signal.SIGKILL)
                    self.killed[topology] += 1
                except ProcessLookupError:
                    pass  # it ended on its own meanwhile

    def stop(self) -> dict[str, int]:
        self._stop_event.set()
        self.join(timeout=10)
        return dict(self.killed)


# --- one fault in one load ---------------------------------------------------------------------

def _counters(endpoints: Endpoints) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    merged: dict[str, dict] = {}
    for url in endpoints.localstack_urls:
        for name, series in scrape(url, timeout=15).items():
            merged.setdefault(name, {}).update(series)
    return merged


def _sum(samples: dict, account: str, **match: str) -> float:
    total = 0.0
    for labels, value in samples.items():
        d = dict(labels)
        if d.get("account") == account and all(d.get(k) == v for k, v in match.items()):
            total += value
    return total


@contextmanager
def applied(fault: Fault, lab: Lab, endpoints: Endpoints, run: FaultRun) -> Iterator[None]:
    """The fault on, for the with-block; always reverted, and its effect recorded in `run`."""
    before = _counters(endpoints)
    killer: EnvironmentKiller | None = None
    conditions = Conditions(lab, "both", fault.conditions, fault.hold_s) if fault.conditions else None
    switched: list[str] = []
    try:
        if conditions is not None:
            conditions.apply()
        elif fault.name == "sigkill":
            killer = EnvironmentKiller(localstack_roots(endpoints),
                                       {t: top.functions["delivery"] for t, top in endpoints.topologies.items()})
            killer.start()
        elif fault.name == "kill-switch":
            for line in kill_switch.run(lab, "on", "delivery", "both"):
                switched.append(line)
                say(line)
        yield
    finally:
        # a second Ctrl-C must not cut the revert short (see resilience.verify)
        held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            if conditions is not None:
                for problem in conditions.revert():
                    say(f"WARNING {problem}")
            killed = killer.stop() if killer is not None else {}
            if fault.name == "kill-switch":
                for line in kill_switch.run(lab, "off", "delivery", "both"):
                    say(line)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
        say(f"{fault.name}: reverted")
    after = _counters(endpoints)
    for name, topology in endpoints.topologies.items():
        account, delivery = topology.account, topology.functions["delivery"]
        if fault.evidence_mode:
            family = "emf_fault_injected_total"
            n = (_sum(after.get(family, {}), account, mode=fault.evidence_mode)
                 - _sum(before.get(family, {}), account, mode=fault.evidence_mode))
            run.effect[name], run.took_effect[name] = f"{n:.0f} {fault.evidence_mode} faults injected", n > 0
        elif fault.name == "sigkill":
            n = killed.get(name, 0)
            run.effect[name], run.took_effect[name] = f"{n} environments killed", n > 0
        else:
            family = "lab_lambda_invocations_total"
            ran = (_sum(after.get(family, {}), account, function_name=delivery)
                   - _sum(before.get(family, {}), account, function_name=delivery))
            throttled = (_sum(after.get("lab_lambda_throttles_total", {}), account, function_name=delivery)
                         - _sum(before.get("lab_lambda_throttles_total", {}), account, function_name=delivery))
            on = any(line.startswith(f"[{name}]") and "kill switch ON" in line for line in switched)
            run.effect[name] = (f"switch {'on' if on else 'NOT on'}: {ran:.0f} delivery invocations, "
                                f"{throttled:.0f} throttled in {fault.hold_s:g} s")
            run.took_effect[name] = on


def run_load(profile: str, profiles_file: Path, endpoints_file: Path, reports: Path,
             on_started: Callable[[], None]) -> tuple[int, Path | None]:
    """`python -m load run` on both topologies; `on_started` runs in this thread while it runs."""
    before = {p.name for p in reports.glob("*")} if reports.exists() else set()
    command = [sys.executable, "-m", "load", "run", "--profile", profile, "--topology", "both",
               "--profiles-file", str(profiles_file), "--endpoints", str(endpoints_file),
               "--reports", str(reports)]
    process = subprocess.Popen(command, cwd=REPO_ROOT)
    try:
        on_started()
        code = process.wait()
    finally:
        if process.poll() is None:  # interrupted: the load writes its reports on SIGINT
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    new = sorted(p for p in reports.glob("*") if p.is_dir() and p.name not in before)
    return code, (new[-1] if new else None)


def run_fault(fault: Fault, endpoints: Endpoints, lab: Lab, args: argparse.Namespace) -> FaultRun:
    run = FaultRun(fault)
    delivery = next(iter(endpoints.topologies.values())).functions["delivery"]
    sampler = PlatformSampler(endpoints.localstack_urls, delivery).start()
    try:
        _wait_first_sample(sampler)
        drainer = Drainer(endpoints, sampler, args.quiet)  # counters' baseline before the load

        def schedule() -> None:
            time.sleep(args.start)
            say(f"{fault.name}: ON for {fault.hold_s:g} s ({fault.what})")
            with applied(fault, lab, endpoints, run):
                time.sleep(fault.hold_s)

        code, folder = run_load(args.profile, args.profiles_file, args.endpoints, args.session, schedule)
        if folder is None or code not in (0, 1):  # Locust exits 1 when a request failed: still a run
            run.error = f"the load did not run to its end (exit {code})"
            return run
        say(f"{fault.name}: load done; draining (timeout {args.drain_timeout:.0f} s)")
        if not drainer.wait(args.drain_timeout):
            say(f"{fault.name}: drain timed out: what is still queued is counted in flight")
    finally:
        figures = sampler.stop()
    try:
        run.report, _ = build_mod.build(endpoints, from_folder(folder), settle_seconds=args.quiet, sampled=figures,
                                        criteria_fn=lambda data, _live: run.record(data))
    except (RunError, BotoCoreError, ClientError, OSError) as exc:
        # this fault's verdict is "no ledger"; the next fault still runs
        run.error = f"no report for {folder.name}: {type(exc).__name__}: {exc}"
    return run


# --- the table ---------------------------------------------------------------------------------

def table(runs: list[FaultRun]) -> str:
    rows = [("fault", "topology", "accepted", "delivered", "dead-lettered", "in flight", "lost", "duplicates",
             "took effect", "verdict")]
    for run in runs:
        if run.error or not run.ledgers:
            rows.append((run.fault.name, "-", "-", "-", "-", "-", "-", "-", "-", f"FAIL: {run.error or 'no ledger'}"))
            continue
        verdict = "PASS" if run.passed else "FAIL"
        for topology, ledger in run.ledgers.items():
            lost = f"{ledger['lost']}" + ("" if run.decidable.get(topology) else " (undecided)")
            rows.append((run.fault.name, topology, str(sum(ledger.values())), str(ledger["delivered"]),
                         str(ledger["dead_lettered"]), str(ledger["in_flight"]), lost,
                         str(run.duplicates.get(topology, 0)), run.effect.get(topology, "-"), verdict))
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def write_summary(runs: list[FaultRun], args: argparse.Namespace) -> Path:
    path = args.session / "summary.md"
    lines = [f"# Faults under load, {args.session.name.removeprefix('faults-')}", "",
             f"Profile `{args.profile}` on both topologies; each fault from {args.start:g} s into its own load.", ""]
    lines += [f"- **{run.fault.name}** ({run.fault.hold_s:g} s): {run.fault.what}; report: "
              f"{run.report.relative_to(args.session) if run.report else '-'}" for run in runs]
    lines += ["", table(runs), ""]
    path.write_text("\n".join(lines))
    (path.with_suffix(".json")).write_text(json.dumps([
        {"fault": r.fault.name, "passed": r.passed, "error": r.error, "ledgers": r.ledgers,
         "lost_decidable": r.decidable, "duplicates": r.duplicates, "effect": r.effect,
         "report": str(r.report) if r.report else None} for r in runs], indent=2) + "\n")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m resilience.under_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"comma-separated, from: {', '.join(FAULTS)} (default: all, in this order)")
    parser.add_argument("--profile", default="smoke", help="load profile (load/profiles.toml)")
    parser.add_argument("--profiles-file", type=Path, default=PROFILES_FILE)
    parser.add_argument("--start", type=float, default=120.0,
                        help="seconds into the load when the fault begins (smoke: the ramp past the courier limit)")
    parser.add_argument("--quiet", type=float, default=150.0,
                        help="seconds without activity before the ledger decides lost (Lambda retries 1-2 min apart)")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--endpoints", type=Path, default=None, help="default: $LAB_ENDPOINTS_FILE or .lab/endpoints.json")
    parser.add_argument("--reports", type=Path, default=REPORTS_DIR)
    return parser


def check_args(args: argparse.Namespace) -> list[Fault]:
    names = [n.strip() for n in args.faults.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown or not names:
        raise LabError(f"unknown fault(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(FAULTS)}")
    try:
        profile = get_profile(args.profile, args.profiles_file)
    except ProfileError as exc:
        raise LabError(str(exc)) from None
    faults = [FAULTS[n] for n in names]
    longest = max(f.hold_s for f in faults)
    if args.start < 0 or args.start + longest > profile.duration:
        fix = (f"use --start {profile.duration - longest:g} or less" if profile.duration >= longest
               else f"it is too short for a {longest:g} s fault")
        raise LabError(f"--start {args.start:g}: a {longest:g} s fault must end inside the {profile.duration:g} s "
                       f"profile {args.profile!r}: {fix}")
    return faults


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.endpoints = args.endpoints or default_path()
    try:
        faults = check_args(args)
        endpoints = load_endpoints(args.endpoints)
        lab = load_lab(path=args.endpoints)
    except (LabError, LabNotUp) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # every run folder of this session in a folder of its own: the load names its run folder, and
    # another load writing beside it (a second lab) must not be taken for this one
    args.session = args.reports / f"faults-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    args.session.mkdir(parents=True)
    say(f"reports in {args.session}")
    runs: list[FaultRun] = []
    with signals_raise():
        try:
            for number, fault in enumerate(faults, start=1):
                say(f"[{number}/{len(faults)}] {fault.name}: {args.profile} load on both topologies, "
                    f"the fault from {args.start:g} s for {fault.hold_s:g} s")
                try:
                    runs.append(run_fault(fault, endpoints, lab, args))
                except LabError as exc:
                    runs.append(FaultRun(fault, error=str(exc)))
                say(f"{fault.name}: {'PASS' if runs[-1].passed else 'FAIL'}")
        except Interrupted as exc:
            say(f"interrupted by {exc}: faults reverted")
            return 130
    print(table(runs), flush=True)
    path = write_summary(runs, args)
    say(f"summary: {path}")
    return 0 if all(r.passed for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
