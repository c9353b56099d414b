"""Compose mode: the lab's images, then `docker-compose up` on docker-compose.yml, by project.

Everything the lab starts carries the compose project's label (COMPOSE_PROJECT_NAME, .env), so
`down` removes exactly it (containers, network; the file writes no volume) and then checks that
nothing of the project is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request

from labctl import images, localstack_host, mode, processes, prometheus_host
from lab_kernel.settings import REPO_ROOT, STATE_DIR, Settings, SettingsError

# Inside the compose network every LocalStack listens on 4566 under its service name.
CONTAINER_PORT = 4566
PROMETHEUS_CONFIG = STATE_DIR / "prometheus" / "prometheus.yml"
GRAFANA_STATE = STATE_DIR / "grafana"


def project(settings: Settings) -> str:
    return settings.get("COMPOSE_PROJECT_NAME")


def command(settings: Settings) -> list[str]:
    return [*mode.compose_command(), "--project-name", project(settings)]


def environment(settings: Settings) -> dict[str, str]:
    """The process environment plus the lab's settings, so overrides reach compose's substitution."""
    config = PROMETHEUS_CONFIG if PROMETHEUS_CONFIG.exists() else REPO_ROOT / "prometheus/prometheus.yml"
    return {**os.environ, **settings.values, "LAB_PROMETHEUS_CONFIG": str(config),
            # the catalogue's per-account limits, computed as host mode computes them
            "LAB_ACCOUNT_CONCURRENCY_BY_ACCOUNT": localstack_host.account_limits(settings)}


def prometheus_targets(settings: Settings) -> dict[str, list[str]]:
    return {
        "localstack": [f"{name}:{CONTAINER_PORT}" for name in settings.localstack_instances()],
        # Locust runs on the host (`make load`); the container reaches it through the Docker bridge
        "locust": [f"host.docker.internal:{settings.port('LAB_LOCUST_METRICS_PORT')}"],
    }


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def wait_ready(settings: Settings, services: list[str], began: float, timeout: float = 120) -> None:
    checks = {name: (lambda url=url: localstack_host.is_ready(url), url)
              for name, url in ((n, f"http://127.0.0.1:{settings.port(k)}")
                                for n, k in settings.localstack_instances().items())}
    checks["prometheus"] = (lambda: _ready(f"{settings.prometheus_url}/-/ready"), settings.prometheus_url)
    if "grafana" in services:
        checks["grafana"] = (lambda: _ready(f"{settings.grafana_url}/api/health"), settings.grafana_url)
    for name, (check, url) in checks.items():
        processes.wait_until(check, f"{name} on {url}", timeout)
        print(f"  {name} ready on {url} after {time.monotonic() - began:.1f} s", flush=True)


def up(settings: Settings, step) -> bool:
    """Build, start and wait for the lab's containers. Returns whether Grafana runs."""
    began = time.monotonic()
    compose = command(settings)
    step("building the lab's images from Debian and PyPI packages (cached layers: seconds)")
    images.build_all(settings)
    services = [*settings.localstack_instances(), "prometheus"]
    grafana = images.grafana_available(settings)
    if grafana:
        services.append("grafana")
    PROMETHEUS_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    PROMETHEUS_CONFIG.write_text(prometheus_host.render_config(prometheus_targets(settings)))
    step(f"starting {', '.join(services)} with {' '.join(compose[:-2])} (project {project(settings)})")
    subprocess.run([*compose, "up", "--detach", "--no-build", *services],
                   cwd=REPO_ROOT, env=environment(settings), check=True)
    wait_ready(settings, services, began)
    GRAFANA_STATE.parent.mkdir(parents=True, exist_ok=True)
    GRAFANA_STATE.write_text(json.dumps({"running": grafana}))
    return grafana


def grafana_running() -> bool:
    try:
        return bool(json.loads(GRAFANA_STATE.read_text())["running"])
    except (OSError, ValueError, KeyError):
        return False


def leftovers(settings: Settings) -> list[str]:
    """Containers, networks and volumes of the project that still exist."""
    label = f"label=com.docker.compose.project={project(settings)}"
    found = []
    for kind, listing in (("container", ["ps", "-a"]), ("network", ["network", "ls"]), ("volume", ["volume", "ls"])):
        result = subprocess.run(["docker", *listing, "--quiet", "--filter", label], capture_output=True, text=True)
        found += [f"{kind} {ident}" for ident in result.stdout.split()]
    return found


def down(settings: Settings) -> list[str]:
    """Stop and remove the project; returns what is left of it (nothing, normally)."""
    if not mode.docker_engine_answers():
        raise SettingsError("the lab ran in compose mode but no Docker engine answers: start Docker, then `make down`")
    subprocess.run([*command(settings), "down", "--remove-orphans", "--volumes", "--timeout", "20"],
                   cwd=REPO_ROOT, env=environment(settings), check=False)
    PROMETHEUS_CONFIG.unlink(missing_ok=True)
    GRAFANA_STATE.unlink(missing_ok=True)
    return leftovers(settings)
