"""Compose mode end to end, as most workshop attendees run it: `LAB_MODE=docker make up`, an order
through each topology to the courier, Prometheus scraping both LocalStack containers and Locust,
a short smoke load, then `make down` leaving no container, network, volume or bound port.

A second lab beside any running one: its own compose project, state folder and ports. Needs a
Docker engine; CI starts one (.ci/run), and there a missing engine fails the test instead of
skipping it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import requests

from lab_kernel.settings import REPO_ROOT
from tests.integration.test_pipeline_support import statuses, story, wait_for
from tests.support.localstack import DEFAULT_ACCOUNT, LocalStackInstance, docker_reachable, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PORT_KEYS = ("LAB_LOCALSTACK_PORT", "LAB_LOCALSTACK_FLOW_CONTROL_PORT", "LAB_PROMETHEUS_PORT",
             "LAB_GRAFANA_PORT", "LAB_LOCUST_PORT", "LAB_LOCUST_METRICS_PORT")
ORDER = {"order_id": "compose-1", "items": [{"sku": "widget-7", "qty": 2}], "customer": "alice"}
# Long enough for the smoke profile's warm-up and part of its ramp to reach Prometheus (5 s scrapes)
LOAD_SECONDS = 60


def _bound(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run(env: dict, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
    began = time.monotonic()
    result = subprocess.run(list(argv), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"{' '.join(argv)}: exit {result.returncode} after {time.monotonic() - began:.0f} s")
    return result


def _query(prometheus_url: str, expr: str) -> list[dict]:
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]["result"]


def _project_objects(project: str) -> list[str]:
    label = f"label=com.docker.compose.project={project}"
    found = []
    for listing in (["ps", "-a"], ["network", "ls"], ["volume", "ls"]):
        found += subprocess.run(["docker", *listing, "--quiet", "--filter", label],
                                capture_output=True, text=True, check=True).stdout.split()
    return found


@pytest.fixture(scope="module")
def compose_lab(tmp_path_factory):
    if not docker_reachable():
        if os.environ.get("CI"):
            pytest.fail("no Docker engine answers in CI: .ci/run starts one (scripts/docker-engine.sh start)")
        pytest.skip("no Docker engine answers: compose mode cannot run here")
    state = tmp_path_factory.mktemp("compose-lab")
    ports = {key: str(free_port()) for key in PORT_KEYS}
    project = f"lab-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **ports, "LAB_MODE": "docker", "LAB_STATE_DIR": str(state / "lab"),
           "COMPOSE_PROJECT_NAME": project}
    up = _run(env, "make", "up")
    print(up.stdout[-6000:])
    lab = {"env": env, "ports": ports, "project": project, "state": state, "up": up}
    try:
        yield lab
    finally:
        down = _run(env, "make", "down")
        print(down.stdout[-2000:], down.stderr[-2000:])
        lab["down"] = down
        left = _project_objects(project)
        if left:  # never leave a test's containers running, whatever failed above
            subprocess.run(["docker", "rm", "-f", *left], capture_output=True)


def test_make_up_in_compose_mode_prints_the_urls_and_next_steps(compose_lab):
    up, ports = compose_lab["up"], compose_lab["ports"]
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    out = up.stdout
    assert "==> building the lab's images" in out and "[images] serverless-boundary-lab/localstack:" in out
    assert "==> provisioning no-flow-control, flow-control (bootstrap" in out  # the default pair
    assert "The lab is up (docker mode)" in out
    assert f"LocalStack   http://127.0.0.1:{ports['LAB_LOCALSTACK_PORT']}   (no-flow-control)" in out
    assert f"LocalStack   http://127.0.0.1:{ports['LAB_LOCALSTACK_FLOW_CONTROL_PORT']}   (flow-control)" in out
    assert f"Prometheus   http://127.0.0.1:{ports['LAB_PROMETHEUS_PORT']}" in out
    # Grafana either runs, or one line says it is missing and where the dashboards are
    grafana = [line for line in out.splitlines() if line.strip().startswith("Grafana")]
    assert len(grafana) == 1 and (f"http://127.0.0.1:{ports['LAB_GRAFANA_PORT']}" in grafana[0]
                                  or "grafana/dashboards/" in grafana[0]), grafana
    assert "Next: `make load`" in out and "Stop: `make down`." in out
    # the compose file's memory limits hold (Debian's docker-compose v1 applies `deploy` limits)
    limits = {}
    for ident in subprocess.run(["docker", "ps", "--quiet", "--filter", f"label=com.docker.compose.project={compose_lab['project']}"],
                                capture_output=True, text=True, check=True).stdout.split():
        name, memory = subprocess.run(["docker", "inspect", "--format", '{{index .Config.Labels "com.docker.compose.service"}} {{.HostConfig.Memory}}', ident],
                                      capture_output=True, text=True, check=True).stdout.split()
        limits[name] = int(memory)
    assert limits["localstack"] == limits["localstack-flow-control"] == 6 * 2**30 and limits["prometheus"] == 2**30, limits
    status = _run(compose_lab["env"], sys.executable, "-m", "labctl", "status")
    assert "mode: docker" in status.stdout and "localstack-flow-control" in status.stdout


def test_an_order_through_each_topology_reaches_the_courier(compose_lab):
    assert compose_lab["up"].returncode == 0
    endpoints = json.loads((compose_lab["state"] / "lab" / "endpoints.json").read_text())
    for name, topo in endpoints["topologies"].items():
        response = requests.post(topo["notify_url"], json={**ORDER, "order_id": f"compose-{name}"}, timeout=30)
        assert response.status_code == 200, response.text
        correlation_id = response.json()["correlation_id"]
        logs = LocalStackInstance(url=topo["localstack_url"]).client("logs", account=topo["account"])
        groups = topo["log_groups"]
        delivery = wait_for(
            f"{name}: delivery COMPLETED for {correlation_id}",
            lambda: (s := story(logs, groups["delivery"], correlation_id)) and s[-1]["message"]["status"] == "COMPLETED" and s,
            timeout=120,
        )
        courier = wait_for(f"{name}: courier COMPLETED", lambda: (
            s := story(logs, groups["courier"], correlation_id)) and "COMPLETED" in statuses(s) and s, timeout=20)
        # the courier answered this very order, inside the topology's own container
        assert delivery[-1]["message"]["courier"]["correlation_id"] == correlation_id
        assert {line["service"] for line in courier} == {"slow-api"}
        print(f"{name}: {correlation_id} delivered after {delivery[-1]['message']['attempts']} attempt(s)")
    assert DEFAULT_ACCOUNT not in {t["account"] for t in endpoints["topologies"].values()}


def test_prometheus_scrapes_both_localstacks_and_a_short_smoke_load(compose_lab):
    assert compose_lab["up"].returncode == 0
    env, ports = compose_lab["env"], compose_lab["ports"]
    prometheus = f"http://127.0.0.1:{ports['LAB_PROMETHEUS_PORT']}"
    up = wait_for("both LocalStack containers scraped", lambda: (
        r := _query(prometheus, 'up{job="localstack"} == 1')) and len(r) == 2 and r, timeout=30, interval=2)
    assert {s["metric"]["instance"] for s in up} == {"localstack:4566", "localstack-flow-control:4566"}

    # `make load PROFILE=smoke` as an attendee runs it, stopped after a minute with SIGTERM to its
    # process group (what `kill` or a CI timeout sends): Locust stops its users and still writes
    # its reports. (Headless Locust leaves SIGINT to the terminal's Ctrl-C handling.)
    load = subprocess.Popen(["make", "--no-print-directory", "load", "PROFILE=smoke"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        scraped = wait_for("Locust's requests in Prometheus", lambda: (
            r := _query(prometheus, 'sum by (topology) (locust_requests_total{job="locust"}) > 0')) and len(r) == 2 and r,
            timeout=LOAD_SECONDS + 30, interval=5)
        time.sleep(max(0.0, LOAD_SECONDS - 20))
    finally:
        os.killpg(load.pid, signal.SIGTERM)
        try:
            out, _ = load.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(load.pid, signal.SIGKILL)
            out, _ = load.communicate()
    print(out[-3000:])
    reports = re.search(r"reports in (\S+)", out)
    assert reports, out[-2000:]
    report_dir = Path(reports.group(1))
    try:
        # the run's CSV, written after the interrupt
        assert list(report_dir.glob("*.csv")), f"Locust wrote no CSV in {report_dir}"
    finally:
        # a cut run is no run for `make report` (it takes the latest folder in reports/)
        shutil.rmtree(report_dir, ignore_errors=True)
    assert {s["metric"]["topology"] for s in scraped} == {"no-flow-control", "flow-control"}
    # the orders reached each topology's functions, counted by the platform in its container
    invoked = _query(prometheus, 'sum by (topology) (lab_lambda_invocations_total{function_name="NotificationFunction"})')
    assert {s["metric"].get("topology") for s in invoked if float(s["value"][1]) > 0} == {"no-flow-control", "flow-control"}


def test_make_down_leaves_no_container_network_volume_or_port(compose_lab):
    # runs last in this module: the fixture's `make down` happens at teardown, so check it by
    # running it here first (a second `make down` at teardown is then a no-op)
    down = _run(compose_lab["env"], "make", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert f"stopping the compose project {compose_lab['project']}" in down.stdout
    assert _project_objects(compose_lab["project"]) == []
    assert not [key for key, port in compose_lab["ports"].items() if _bound(int(port))]
