"""`python -m report build|story|preview|experiment` (make report / story / experiment)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lab_kernel import endpoints as endpoints_mod
from lab_kernel import topologies as catalogue


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m report", description=__doc__)
    parser.add_argument("--endpoints", type=Path, default=None, help="default .lab/endpoints.json")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write reports/<run>/report.md with plots and the ledger")
    b.add_argument("--run", type=Path, help="a run folder (reports/<stamp>-<profile>-<topology>); default the newest")
    b.add_argument("--start", help="start of the range instead of a run: ISO 8601, unix seconds, or -20m")
    b.add_argument("--end", help="end of the range (default: the run's end, or now)")
    b.add_argument("--profile", help="load profile of the range (for the capacity preview)")
    b.add_argument("--out", type=Path, help="folder to write into (default: the run folder)")
    b.add_argument("--settle", type=float, default=None,
                   help="seconds after its last delivery line an order may still retry (default 240)")
    a = sub.add_parser("account", help="every function, API, queue and rule of one account over a range "
                                       "(an app deployed with SAM or CloudFormation)")
    a.add_argument("--account", required=True, help="e.g. 444444444444")
    a.add_argument("--run", type=Path, help="a run folder for the range (default: the newest, or --start)")
    a.add_argument("--start", help="start of the range: ISO 8601, unix seconds, or -20m")
    a.add_argument("--end", help="end of the range (default: the run's end, or now)")
    a.add_argument("--out", type=Path, help="folder to write into (default: the run folder)")
    s = sub.add_parser("story", help="every log line of one order, in time order")
    s.add_argument("correlation_id", nargs="?", default="")
    s.add_argument("--topology", choices=catalogue.names(), help="default: search both")
    s.add_argument("--account", help="search every function of this account instead (an app deployed "
                                      "with SAM or CloudFormation), e.g. 444444444444")
    s.add_argument("--region", default=None, help="with --account: its region (default $AWS_DEFAULT_REGION or us-east-1)")
    p = sub.add_parser("preview", help="capacity preview: where the configuration cannot hold")
    p.add_argument("--profile", default="seed")
    e = sub.add_parser("experiment", help="smoke load on both topologies, drain, report, verdict")
    e.add_argument("--profile", default="smoke")
    e.add_argument("--drain-timeout", type=float, default=None, help="seconds (default from the preview, >= 600)")
    e.add_argument("--quiet", type=float, default=150.0, help="seconds with no invocation before drained")
    e.add_argument("--order", default=None,
                   help="auto (the measured check decides), side-by-side or in-turns; default $EXPERIMENT_ORDER or auto")
    e.add_argument("--check", action="store_true",
                   help="only the prediction and the run order's measured check (about 30 s), no load")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Imports per command: `story` should not pay for matplotlib.
    from report.config_sources import ConfigError
    from report.prom import PrometheusError
    from report.runs import RunError
    from report.account import AccountError
    from report.story import StoryError

    try:
        if args.command == "experiment":
            from report.run_order import ENV, OrderError, parse_order

            try:
                # checked before the lab is brought up: a typo costs nothing
                order = parse_order(args.order if args.order is not None else os.environ.get(ENV))
            except OrderError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
        if args.command == "experiment":
            _judge_against_the_pair()
        if args.command == "experiment" and args.endpoints is None:
            _bring_up_if_down()
        endpoints = endpoints_mod.load(args.endpoints)
        if args.command == "account":
            return _account(endpoints, args)
        if args.command == "story":
            return _story(endpoints, args)
        if args.command == "preview":
            from report.capacity import preview, render_text
            from report.config_sources import gather

            print(render_text(preview(gather(args.profile, endpoints))))
            return 0
        if args.command == "build":
            from report import build as build_mod
            from report.collect import DEFAULT_SETTLE_SECONDS
            from report.runs import resolve

            from report.runs import run_order, turns

            window = resolve(args.run, args.start, args.end, args.profile)
            windows = turns(window.folder) if args.start is None else None
            path, _ = build_mod.build(endpoints, window, args.out, args.settle or DEFAULT_SETTLE_SECONDS,
                                      windows=windows, run_order=run_order(window.folder) if windows else None)
            print(path)
            return 0
        if args.command == "experiment":
            from report.experiment import experiment

            return experiment(endpoints, args.profile, args.drain_timeout, args.quiet, args.endpoints, order, args.check)
    except (endpoints_mod.LabNotUp, ConfigError, RunError, StoryError, PrometheusError, AccountError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except _connection_errors() as error:
        print(f"error: LocalStack unreachable ({error.__class__.__name__}): run `make up` first", file=sys.stderr)
        return 2
    return 2


def _judge_against_the_pair() -> None:
    """An experiment judges every topology against the comparison pair (`report.verdict`), so a
    `$TOPOLOGIES` without it is widened, said once, and exported: `make up` (when the lab is
    down), the load and the report then see the same choice."""
    from lab_kernel import topologies

    chosen = topologies.selected()
    wanted = topologies.catalogue().with_pair(chosen)
    if wanted != chosen:
        added = [n for n in wanted if n not in chosen]
        print(f"experiment: adding {', '.join(added)}: every topology is judged against the comparison pair",
              flush=True)
        os.environ[topologies.SELECTION_VARIABLE] = ",".join(wanted)


def _bring_up_if_down() -> None:
    """`make experiment` on a stopped lab starts it first (its exit 2 if that fails)."""
    import subprocess

    from labctl.localstack_host import is_ready

    try:
        endpoints = endpoints_mod.load(None)
        if all(_answers(is_ready, url) for url in endpoints.localstack_urls):
            return
    except endpoints_mod.LabNotUp:
        pass
    print("experiment: the lab is not up: bringing it up first (make up)", flush=True)
    subprocess.run([sys.executable, "-m", "labctl", "down"], check=False, stdout=subprocess.DEVNULL)
    if subprocess.run([sys.executable, "-m", "labctl", "up"], check=False).returncode != 0:
        raise endpoints_mod.LabNotUp("`make up` failed (its error is above): fix that, then `make experiment` again")


def _answers(is_ready, url: str) -> bool:
    try:
        return bool(is_ready(url))
    except Exception:  # noqa: BLE001 - any failure: not answering
        return False


def _connection_errors() -> tuple[type[BaseException], ...]:
    import requests
    from botocore.exceptions import EndpointConnectionError

    return (EndpointConnectionError, requests.ConnectionError)


def _account(endpoints: endpoints_mod.Endpoints, args: argparse.Namespace) -> int:
    from report import account
    from report.prom import Prometheus
    from report.runs import resolve

    if not endpoints.prometheus_url:
        raise endpoints_mod.LabNotUp("the endpoints file names no Prometheus: run `make up`")
    window = resolve(args.run, args.start, args.end)
    figures = account.gather(Prometheus(endpoints.prometheus_url), args.account, window.start, window.end)
    print(account.render(figures))
    print(account.write(figures, args.out or window.folder))
    return 0 if not figures.empty else 1


def _story(endpoints: endpoints_mod.Endpoints, args: argparse.Namespace) -> int:
    from report.aws_state import client
    from report.story import find, format_story

    if args.account:
        from report.story import account_topology

        region = args.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        probe = endpoints_mod.TopologyEndpoints(name="", account=args.account, region=region, notify_url="", courier_url="",
                                       queues={}, functions={}, log_groups={}, deliveries_table="",
                                       localstack_url=endpoints.localstack_url)
        topologies = [account_topology(args.account, region, endpoints.localstack_url,
                                       client(endpoints, probe, "lambda"))]
        names = [topologies[0].name]
    else:
        names = [args.topology] if args.topology else list(endpoints.topologies)
        topologies = [endpoints.topology(n) for n in names]
    found = find(topologies, lambda t: client(endpoints, t, "logs"), args.correlation_id)
    if found is None:
        print(f"error: no log line mentions correlation_id {args.correlation_id} in {', '.join(names)}", file=sys.stderr)
        return 1
    topology, lines = found
    print(format_story(args.correlation_id, lines, topology.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
