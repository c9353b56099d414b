"""Prometheus as a host process (host mode): Debian's `prometheus`, config and TSDB in `.lab/`.

The config is `prometheus/prometheus.yml` (the compose one) with its scrape targets pointed at
127.0.0.1, so relabelling and intervals are the same in both modes. The relabel rules that name
each account's topology are generated from lab_kernel/topologies.toml (`relabel_rules`) in every
rendered config, compose's too; the committed file holds the same rules (a unit test keeps it so).
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import yaml

from lab_kernel import topologies as lab_topologies
from lab_kernel.settings import REPO_ROOT, STATE_DIR, Settings, SettingsError
from labctl import processes

CONFIG_TEMPLATE = REPO_ROOT / "prometheus" / "prometheus.yml"
INSTALL_HINT = "install it with `bash scripts/install-system-deps.sh` (Debian package prometheus)"


class PrometheusError(RuntimeError):
    """Prometheus cannot be started; one line saying what to do."""


def binary() -> str:
    path = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if path is None:
        raise PrometheusError(f"prometheus is not installed: {INSTALL_HINT}")
    return path


def relabel_rules() -> list[dict[str, str]]:
    """One rule per catalogue topology: its account's series get `topology="<name>"`."""
    return [
        {"source_labels": ["account"], "regex": t.account, "target_label": "topology", "replacement": t.name}
        for t in lab_topologies.catalogue().topologies
    ]


def render_config(targets: dict[str, list[str]], template: Path = CONFIG_TEMPLATE) -> str:
    """The committed config with each job's static targets replaced (job name -> host:port) and
    the LocalStack job's topology relabelling generated from the catalogue."""
    config = yaml.safe_load(template.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    if "localstack" in jobs:
        jobs["localstack"]["metric_relabel_configs"] = relabel_rules()
    unknown = set(targets) - set(jobs)
    if unknown:
        raise PrometheusError(f"{template} has no scrape job(s) {', '.join(sorted(unknown))}")
    for name, job_targets in targets.items():
        jobs[name]["static_configs"] = [{"targets": list(job_targets)}]
    return yaml.safe_dump(config, sort_keys=False)


def host_targets(settings: Settings) -> dict[str, list[str]]:
    return {
        # each LocalStack exports only its own topology's account, so no series is doubled
        "localstack": [f"127.0.0.1:{settings.port(key)}" for key in settings.localstack_instances().values()],
        "locust": [f"127.0.0.1:{settings.port('LAB_LOCUST_METRICS_PORT')}"],
    }


def argv(config_file: Path, data_dir: Path, port: int) -> list[str]:
    return [
        binary(),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        # a lab keeps a few runs, not months
        "--storage.tsdb.retention.time=7d",
        # /-/reload after editing .lab/prometheus/prometheus.yml, no restart
        "--web.enable-lifecycle",
    ]


def is_ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
        return response.status == 200


def start(
    settings: Settings,
    name: str = "prometheus",
    state_dir: Path | None = None,
    timeout: float = 60.0,
) -> processes.ManagedProcess:
    """Start Prometheus on 127.0.0.1:LAB_PROMETHEUS_PORT and wait until it is ready."""
    try:
        port = settings.port("LAB_PROMETHEUS_PORT")
        targets = host_targets(settings)
    except SettingsError as error:
        raise PrometheusError(str(error)) from None
    state_dir = state_dir or STATE_DIR / "prometheus"
    data_dir = state_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config_file = state_dir / "prometheus.yml"
    config_file.write_text(render_config(targets))
    process = processes.start(name, argv(config_file, data_dir, port), cwd=state_dir)
    url = f"http://127.0.0.1:{port}"
    waited = processes.wait_until(lambda: is_ready(url), f"Prometheus on {url}", timeout, process)
    print(f"  Prometheus ready after {waited:.1f} s on {url} (log: {process.log_file})", flush=True)
    return process
