"""Locust entry point of the lab: `python -m load run|ui` starts Locust with this file.

Holds the profile's ARRIVAL RATE per topology (an open model, as artillery's arrivalRate in the
seed demo): `load.arrivals` issues tickets at the profile's instants, a pool of users sized by
`load.shape` sends them. Custom options (--lab-profile, --lab-topology, ...) are listed by
`python -m locust -f locustfile.py --help`.
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import gevent
from locust import FastHttpUser, LoadTestShape, events, task

from lab_kernel.settings import Settings, SettingsError
from lab_kernel.topologies import catalogue
from load.arrivals import ArrivalScheduler, Ticket
from load.metrics import LocustMetrics
from load.profiles import PROFILES_FILE, Profile, ProfileError, get_profile
from load.shape import REQUEST_TIMEOUT, ShapePlan
from load.stats import RunStats
from load.targets import TargetError, load_targets

SHORT = {t.name: t.short for t in catalogue().topologies}  # order ids: <run>-<short>-<n>


@dataclass
class Config:
    profile: Profile
    urls: dict[str, str]  # topology -> notify URL
    report_dir: Path | None
    progress_interval: float


@dataclass
class Run:
    stats: RunStats
    scheduler: ArrivalScheduler
    run_id: str
    started_at: float  # epoch seconds at run time 0
    progress: gevent.Greenlet | None = None
    in_flight: int = 0


CONFIG: Config | None = None
RUN: Run | None = None
PLAN: ShapePlan | None = None
METRICS = LocustMetrics()


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    group = parser.add_argument_group("Serverless Boundary Lab")
    group.add_argument("--lab-profile", default="seed", help="profile in --profiles-file")
    group.add_argument("--lab-topology", default="both", help="a topology, both, all or a,b")
    group.add_argument("--lab-profiles-file", default=str(PROFILES_FILE))
    group.add_argument("--lab-endpoints", default="",
                       help="the lab's endpoints file (default: $LAB_ENDPOINTS_FILE, else .lab/endpoints.json)")
    group.add_argument("--lab-report-dir", default="", help="where phases.csv/json are written")
    group.add_argument(
        "--lab-metrics-port", type=int, default=-1,
        help="Prometheus port (default LAB_LOCUST_METRICS_PORT; 0 = off)",
    )
    group.add_argument("--lab-metrics-host", default="127.0.0.1",
                       help="address for the metrics (python -m load sets it by lab mode)")
    group.add_argument("--lab-progress-interval", type=float, default=5.0)


@events.init.add_listener
def _configure(environment, **_kw) -> None:
    global CONFIG, PLAN
    options = environment.parsed_options
    if options is None:  # imported by a tool, not run by Locust's CLI
        return
    try:
        profile = get_profile(options.lab_profile, Path(options.lab_profiles_file))
        targets = load_targets(options.lab_topology, Path(options.lab_endpoints) if options.lab_endpoints else None)
        settings = Settings.load()
        port = options.lab_metrics_port
        if port < 0:
            port = settings.port("LAB_LOCUST_METRICS_PORT")
        address = options.lab_metrics_host
    except (ProfileError, TargetError, SettingsError) as error:
        sys.exit(f"error: {error}")
    CONFIG = Config(
        profile=profile,
        urls={t.topology: t.notify_url for t in targets},
        report_dir=Path(options.lab_report_dir) if options.lab_report_dir else None,
        progress_interval=options.lab_progress_interval,
    )
    PLAN = ShapePlan(profile, len(targets))
    for target in targets:
        METRICS.init_topology(target.topology)
    METRICS.phase.labels(profile=profile.name).set(0)
    if port:
        try:
            METRICS.serve(port, address)
        except OSError as error:
            sys.exit(f"error: cannot serve Locust metrics on {address}:{port} ({error})")
        print(f"Locust metrics for Prometheus on http://{address}:{port}/metrics", flush=True)
    print(
        f"profile {profile.name!r} ({profile.duration:.0f} s, peak {profile.peak_rate:g} req/s per "
        f"topology) -> {', '.join(f'{t.topology}: {t.notify_url}' for t in targets)}",
        flush=True,
    )


def _clock() -> float:
    shape = ArrivalRateShape.instance
    return shape.get_run_time() if shape else 0.0


@events.test_start.add_listener
def _test_start(environment, **_kw) -> None:
    global RUN
    if CONFIG is None:
        return
    if RUN is not None:  # a restart from the web UI: a fresh run
        RUN.scheduler.stop()
    topologies = tuple(CONFIG.urls)
    scheduler = ArrivalScheduler(CONFIG.profile, topologies, _clock)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)
    RUN = Run(RunStats(CONFIG.profile, topologies), scheduler, run_id, time.time() - _clock())
    scheduler.start()
    RUN.progress = gevent.spawn(_progress, environment, RUN)


def _progress(environment, run: Run) -> None:
    while True:
        gevent.sleep(CONFIG.progress_interval)
        now = _clock()
        print(run.stats.progress_line(now, environment.runner.user_count, run.scheduler.backlog),
              flush=True)


@events.test_stop.add_listener
def _test_stop(environment, **_kw) -> None:
    if RUN is None or CONFIG is None:
        return
    RUN.scheduler.stop()
    if RUN.progress is not None:
        RUN.progress.kill(block=False)
    METRICS.phase.labels(profile=CONFIG.profile.name).set(0)
    for topology in CONFIG.urls:
        METRICS.target_rate.labels(topology=topology).set(0)
    print("\nper phase (requests counted when sent):\n" + RUN.stats.summary_table(), flush=True)
    if CONFIG.report_dir is not None:
        RUN.stats.write(
            CONFIG.report_dir,
            {
                "run_id": RUN.run_id, "profile": CONFIG.profile.name,
                "topologies": list(CONFIG.urls), "started_at": RUN.started_at,
                "ended_at": time.time(),
            },
        )
        print(f"phases written to {CONFIG.report_dir}/phases.csv", flush=True)


class ArrivalRateShape(LoadTestShape):
    """Sizes the user pool; the arrival scheduler, not the user count, sets the rate."""

    instance: ArrivalRateShape | None = None

    def __init__(self) -> None:
        super().__init__()
        ArrivalRateShape.instance = self

    def tick(self) -> tuple[int, float] | None:
        if PLAN is None or CONFIG is None:
            return None
        t = self.get_run_time()
        run = RUN
        latency = run.stats.latency_p95() if run else 0.0
        backlog = run.scheduler.backlog if run else 0
        in_flight = run.in_flight if run else 0
        result = PLAN.tick(t, latency, backlog, in_flight)
        where = CONFIG.profile.locate(t) if t < CONFIG.profile.duration else None
        METRICS.phase.labels(profile=CONFIG.profile.name).set(where[0] + 1 if where else 0)
        rate = CONFIG.profile.rate_at(t) if where else 0.0
        for topology in CONFIG.urls:
            METRICS.target_rate.labels(topology=topology).set(rate or 0.0)
        METRICS.users.set(PLAN.users if result else 0)
        METRICS.backlog.set(backlog)
        return result


class NotifyUser(FastHttpUser):
    """One user of the arrival pool: takes a ticket, POSTs one order to its topology."""

    host = "http://127.0.0.1"  # every request uses an absolute URL from endpoints.json
    network_timeout = REQUEST_TIMEOUT
    connection_timeout = 5.0

    def on_start(self) -> None:
        self._ticket: Ticket | None = None

    def wait_time(self) -> float:
        # Blocking here, not in the task: Locust stops a waiting user at once, mid-task it would not.
        run = RUN
        if run is None:
            return 1.0
        self._ticket = run.scheduler.tickets.get()
        return 0.0

    @task
    def notify(self) -> None:
        ticket, run = self._ticket, RUN
        self._ticket = None
        if ticket is None or run is None:
            return  # Locust runs a task before the first wait: nothing to send yet
        topology = ticket.topology
        sent = _clock()
        phase = run.stats.on_send(topology, sent, ticket.due)
        METRICS.sent.labels(topology=topology).inc()
        order_id = f"{run.run_id}-{SHORT[topology]}-{ticket.number:06d}"
        order = {
            "order_id": order_id,
            "customer_id": f"customer-{ticket.number % 97:02d}",
            "items": [{"sku": "WIDGET-1", "quantity": 1 + ticket.number % 3}],
            "placed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "source": "locust",
        }
        run.in_flight += 1
        failed = True
        try:
            with self.client.post(
                CONFIG.urls[topology], json=order, name=f"POST /notify [{topology}]",
                catch_response=True,
            ) as response:
                failed = not 200 <= (response.status_code or 0) < 300
                if failed and not response.status_code:  # no answer: timeout, refused, reset
                    response.failure(f"no answer: {type(response.error).__name__} {response.error}")
                elif failed:
                    response.failure(f"HTTP {response.status_code}: {(response.text or '')[:120]}")
        finally:
            run.in_flight -= 1
        elapsed = _clock() - sent
        run.stats.on_result(topology, phase, elapsed, failed)
        METRICS.observe(topology, elapsed, failed)


if __name__ == "__main__":
    sys.exit("run Locust through the lab: python -m load run|ui --profile P --topology T")
