"""`python -m labctl up|down|status`: bring the lab up and down, in either mode.

`up` picks Docker Compose when a Docker engine answers, else host mode (LAB_MODE overrides),
prints each step, the URLs and where the logs are. `down` stops exactly what `up` started: host
processes by their recorded PIDs, or the compose project, and checks no lab port stays bound.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time

from lab_kernel import endpoints as contract
from lab_kernel.settings import REPO_ROOT, Settings, SettingsError
from lab_kernel.topologies import catalogue
from labctl import compose, localstack_host, mode, processes

# `$LAB_ENDPOINTS_FILE` selects another lab's file, as bootstrap writes it
ENDPOINTS_FILE = contract.default_path()
# every LocalStack's port setting (lab_kernel/topologies.toml), then the other services'
PORT_KEYS = (*dict.fromkeys(t.port_setting for t in catalogue().topologies), "LAB_PROMETHEUS_PORT",
             "LAB_GRAFANA_PORT", "LAB_LOCUST_PORT", "LAB_LOCUST_METRICS_PORT")


def shown(path) -> str:
    """A path as a person would type it: relative to the repository when inside it."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def port_bound(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _check_ports_free(settings: Settings, keys: tuple[str, ...]) -> None:
    for key in keys:
        port = settings.port(key)
        if port_bound(port):
            raise SettingsError(
                f"port {port} ({key}) is already in use: run `make down`, stop what holds it, "
                f"or choose another with {key}=... make up"
            )


def up_host(settings: Settings) -> None:
    from labctl import prometheus_host

    instances = settings.localstack_instances()
    _check_ports_free(settings, (*instances.values(), "LAB_PROMETHEUS_PORT"))
    urls = ", ".join(dict.fromkeys(settings.localstack_urls().values()))
    each = " (one per topology)" if len(instances) > 1 else ""
    step(f"starting LocalStack 4.14.0 on {urls}{each} (host mode, process runtime executor)")
    localstack_host.start_all(settings)
    step(f"starting Prometheus on {settings.prometheus_url}")
    if not shutil.which("prometheus"):
        # Debian's package, installed by the project's own script where it can (root + apt)
        subprocess.run(["bash", str(REPO_ROOT / "scripts/install-system-deps.sh"), "prometheus"], check=False)
    try:
        prometheus_host.start(settings)
    except prometheus_host.PrometheusError as error:
        print(f"  Prometheus not started: {error}", flush=True)


def up_docker(settings: Settings) -> None:
    from labctl import compose

    _check_ports_free(settings, (*settings.localstack_instances().values(), "LAB_PROMETHEUS_PORT", "LAB_GRAFANA_PORT"))
    compose.up(settings, step)


def bootstrap(settings: Settings) -> dict:
    from bootstrap.provision import provision_all

    chosen = settings.topologies
    step(f"provisioning {', '.join(chosen)} (bootstrap; TOPOLOGIES=a,b|all chooses others)")
    return provision_all(settings.localstack_url, settings, urls=settings.localstack_urls())


def print_summary(lab_mode: str, settings: Settings, endpoints: dict, seconds: float) -> None:
    print()
    print(f"The lab is up ({lab_mode} mode) after {seconds:.0f} s.")
    hosted: dict[str, list[str]] = {}
    for topology, url in settings.localstack_urls().items():
        hosted.setdefault(url, []).append(topology)
    for url, topologies in hosted.items():
        print(f"  LocalStack   {url}   ({', '.join(topologies)})   platform metrics {url}/_lab/metrics")
    print(f"  Prometheus   {settings.prometheus_url}")
    if lab_mode == "docker" and compose.grafana_running():
        print(f"  Grafana      {settings.grafana_url}   (anonymous viewer; home dashboard: the comparison)")
    elif lab_mode == "docker":
        print(f"  Grafana      missing ({settings.get('GRAFANA_IMAGE')} is not here and no registry answers): "
              "the dashboards are in grafana/dashboards/*.json; meanwhile Prometheus or `make report`")
    else:
        print("  Grafana      needs Docker; in host mode use Prometheus, `make report`, or import grafana/dashboards/*.json")
    for name, topo in endpoints.get("topologies", {}).items():
        print(f"  {name:16} notify {topo.get('notify_url')}")
    print(f"  endpoints    {shown(ENDPOINTS_FILE)}")
    if lab_mode == "host":
        print(f"  logs         {shown(processes.LOG_DIR)}/ (localstack.log, prometheus.log)")
    else:
        logs = " ".join([*compose.command(settings), "logs", "-f", "localstack"])
        print(f"  logs         {logs}")
    print("Next: `make load` (18-minute seed ramp; PROFILE=smoke for 5 minutes), then watch the dashboards.")
    print("Stop: `make down`.")


def cmd_up(_: argparse.Namespace) -> int:
    began = time.monotonic()
    settings = Settings.load()
    lab_mode = mode.choose()
    previous = mode.last()
    if previous and any(p.alive for p in processes.managed()):
        raise SettingsError(f"the lab is already up ({previous} mode): `make down` first, or `make status`")
    mode.remember(lab_mode)
    try:
        (up_docker if lab_mode == "docker" else up_host)(settings)
        endpoints = bootstrap(settings)
    except BaseException:
        print("error: bringing the lab up failed; stopping what was started", file=sys.stderr, flush=True)
        cmd_down(argparse.Namespace())
        raise
    print_summary(lab_mode, settings, endpoints, time.monotonic() - began)
    return 0


def cmd_down(_: argparse.Namespace) -> int:
    settings = Settings.load()
    lab_mode = mode.last()
    left: list[str] = []
    if lab_mode == "docker":
        step(f"stopping the compose project {compose.project(settings)}")
        left = compose.down(settings)
    stopped = [] if lab_mode != "docker" else [f"compose project {compose.project(settings)}"]
    # reverse start order: Locust and Prometheus before LocalStack
    for process in sorted(processes.managed(), key=lambda p: p.name.startswith("localstack")):
        if processes.stop(process.name):
            stopped.append(f"{process.name} (pid {process.pid})")
    step("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    mode.MODE_FILE.unlink(missing_ok=True)
    if left:
        print(f"warning: still there after `compose down`: {', '.join(left)}", file=sys.stderr)
        return 1
    bound = [f"{k}={settings.port(k)}" for k in PORT_KEYS if port_bound(settings.port(k))]
    if bound:
        print(f"warning: still bound (not by the lab's recorded processes?): {', '.join(bound)}", file=sys.stderr)
        return 1
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    settings = Settings.load()
    lab_mode = mode.last()
    print(f"mode: {lab_mode or 'down'}")
    if lab_mode == "docker":
        subprocess.run([*compose.command(settings), "ps"], cwd=REPO_ROOT, env=compose.environment(settings), check=False)
    for process in processes.managed():
        state = "running" if process.alive else "dead"
        print(f"  {process.name:12} pid {process.pid:<8} {state:8} log {process.log_file}")
    if lab_mode:
        for url in sorted(set(settings.localstack_urls().values())):
            try:
                services = localstack_host.health(url)["services"]
                print(f"  LocalStack {url}: lambda {services.get('lambda')}")
            except OSError:
                print(f"  LocalStack {url}: not answering")
    if ENDPOINTS_FILE.exists():
        topologies = contract.read(ENDPOINTS_FILE).get("topologies", {})
        for name, topo in topologies.items():
            print(f"  {name:16} notify {topo.get('notify_url')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labctl", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="bring the lab up").set_defaults(run=cmd_up)
    commands.add_parser("down", help="stop everything the lab started").set_defaults(run=cmd_down)
    commands.add_parser("status", help="what runs, and where").set_defaults(run=cmd_status)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (SettingsError, processes.ProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        print(f"error: {' '.join(map(str, error.cmd))} failed (exit {error.returncode})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
