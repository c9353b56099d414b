"""`python -m load run|ui|profiles`: check the configuration, then run Locust with the lab's file.

The checks happen here, before Locust starts, so a wrong profile, topology or missing endpoints
file is one clear line, not a Locust traceback. Locust runs as a child process: its gevent
monkey-patching stays out of this one.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from labctl import mode, processes
from lab_kernel import endpoints as contract
from lab_kernel.settings import REPO_ROOT, Settings, SettingsError
from load.profiles import PROFILES_FILE, ProfileError, get_profile, load_profiles
from load.targets import TargetError, label, load_targets

LOCUSTFILE = REPO_ROOT / "locustfile.py"
REPORTS_DIR = REPO_ROOT / "reports"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m load", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("run", "headless, CSV + HTML under reports/<timestamp>/"),
                            ("ui", "Locust's web UI on 127.0.0.1:LAB_LOCUST_PORT")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--profile", default="seed")
        cmd.add_argument("--topology", default=None,
                         help="a topology, both, all or a,b (default: $TOPOLOGIES, else both)")
        cmd.add_argument("--profiles-file", type=Path, default=PROFILES_FILE)
        cmd.add_argument("--endpoints", type=Path, default=None,
                         help="the lab's endpoints file (default: $LAB_ENDPOINTS_FILE, else .lab/endpoints.json)")
        cmd.add_argument("--reports", type=Path, default=REPORTS_DIR, help="parent of the run folder")
        cmd.add_argument("--metrics-port", type=int, default=None,
                         help="Prometheus port (default LAB_LOCUST_METRICS_PORT; 0 = off)")
        cmd.add_argument("--progress-interval", type=float, default=5.0)
    sub.add_parser("profiles", help="list the profiles")
    return parser


def metrics_host(settings: Settings, lab_mode: str | None) -> str:
    """Where Locust serves its metrics. Loopback, except in compose mode: Prometheus then runs in
    a container and reaches the host through the Docker bridge (host.docker.internal), which a
    loopback socket does not answer. LAB_LOCUST_METRICS_HOST overrides."""
    default = "0.0.0.0" if lab_mode == "docker" else "127.0.0.1"
    return settings.get("LAB_LOCUST_METRICS_HOST", default)


def locust_argv(args: argparse.Namespace, report_dir: Path, settings: Settings) -> list[str]:
    metrics_port = (
        settings.port("LAB_LOCUST_METRICS_PORT") if args.metrics_port is None else args.metrics_port
    )
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
        # Locust has a --profile of its own: the lab's options are prefixed --lab-
        "--lab-profile", args.profile, "--lab-topology", args.topology,
        "--lab-profiles-file", str(args.profiles_file), "--lab-endpoints", str(args.endpoints or contract.default_path()),
        "--lab-report-dir", str(report_dir), "--lab-metrics-port", str(metrics_port),
        "--lab-metrics-host", metrics_host(settings, mode.last()),
        "--lab-progress-interval", str(args.progress_interval),
        "--csv", str(report_dir / "locust"), "--html", str(report_dir / "report.html"),
        # the lab prints its own progress lines (phase, target and actual rate)
        "--only-summary",
        # Locust's INFO lines (every pool resize) would drown the progress lines
        "--loglevel", "WARNING",
    ]
    if args.command == "run":
        argv.append("--headless")
    else:
        argv += ["--web-host", "127.0.0.1", "--web-port", str(settings.port("LAB_LOCUST_PORT"))]
    return argv


LOCUST_PROCESS = "locust"


def run_locust(command: list[str], report_dir: Path) -> int:
    """Run Locust to its end. SIGTERM/SIGINT sent to this process are passed on, so Locust stops
    its users and still writes the CSV, HTML and phases files. Locust leads its own process group
    and is recorded with the lab's processes, so `make down` stops a load still running."""
    child = subprocess.Popen(command, cwd=REPO_ROOT, process_group=0)
    processes.adopt(LOCUST_PROCESS, child.pid, report_dir / "report.html")

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            return child.wait()
        except KeyboardInterrupt:
            return child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        processes.forget(LOCUST_PROCESS)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "profiles":
            for profile in load_profiles().values():
                phases = "; ".join(
                    f"{p.duration:g} s {p.start_rate:g}" + (f"->{p.end_rate:g}" if p.end_rate != p.start_rate else "")
                    for p in profile.phases
                )
                print(f"{profile.name:<10} {profile.duration / 60:5.1f} min  {phases}  ({profile.description})")
            return 0
        profile = get_profile(args.profile, args.profiles_file)
        targets = load_targets(args.topology, args.endpoints)
        # Locust gets the names themselves: its environment need not carry $TOPOLOGIES
        args.topology = ",".join(t.topology for t in targets)
        settings = Settings.load()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        report_dir = args.reports / f"{stamp}-{profile.name}-{label(tuple(t.topology for t in targets))}"
        command = locust_argv(args, report_dir, settings)
        if (load := processes.running(LOCUST_PROCESS)) is not None:
            raise processes.ProcessError(f"a load is already running (pid {load.pid}): wait for it to end, "
                                         "or stop it with `make down`")
        report_dir.mkdir(parents=True, exist_ok=False)
    except (ProfileError, TargetError, SettingsError, FileExistsError, processes.ProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"load: profile {profile.name} ({profile.duration / 60:.1f} min), "
        f"{', '.join(t.topology for t in targets)}; reports in {report_dir}",
        flush=True,
    )
    if args.command == "ui":
        print(f"Locust web UI: http://127.0.0.1:{settings.port('LAB_LOCUST_PORT')}", flush=True)
    code = run_locust(command, report_dir)
    print(f"load: exit {code}; CSV and HTML in {report_dir}", flush=True)
    return code
