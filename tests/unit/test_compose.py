"""docker-compose.yml is valid and driven by the same settings as host mode (no engine needed)."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from lab_kernel.settings import REPO_ROOT, read_env_file

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


def compose_config() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_file_is_valid_for_a_compose_tool():
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose (Debian) is missing: run `bash scripts/install-system-deps.sh`"
    result = subprocess.run([tool, "-f", str(COMPOSE_FILE), "config", "-q"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_variable_compose_uses_is_set_in_env_file():
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    defined = read_env_file(REPO_ROOT / ".env")
    assert used, "compose uses no settings from .env"
    assert used <= set(defined), f"missing from .env: {sorted(used - set(defined))}"


def test_images_are_pinned_and_ports_bind_loopback():
    env = read_env_file(REPO_ROOT / ".env")
    assert env["LOCALSTACK_VERSION"] == "4.14.0"
    for key in ("PROMETHEUS_IMAGE", "GRAFANA_IMAGE"):
        name, _, tag = env[key].rpartition(":")
        assert name and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{key}={env[key]} is not pinned"
    # the base both images build on: Debian pinned by digest (labctl/images.py makes it with
    # debootstrap under the same name where no registry answers)
    assert re.fullmatch(r"debian:[a-z]+-slim@sha256:[0-9a-f]{64}", env["LAB_BASE_IMAGE"]), env["LAB_BASE_IMAGE"]
    for dockerfile in ("docker/localstack/Dockerfile", "docker/prometheus/Dockerfile"):
        text = (REPO_ROOT / dockerfile).read_text()
        assert "FROM ${BASE_IMAGE}" in text, dockerfile
        # Debian packages pinned to the versions .env names
        assert re.search(r"=\$\{[A-Z_]+_DEBIAN_VERSION\}", text), dockerfile
    for name, service in compose_config()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_lab_images_are_built_not_pulled_and_grafana_is_the_upstream_one():
    from labctl import images
    from lab_kernel.settings import Settings

    settings = Settings.load()
    built = {image.tag for image in images.lab_images(settings).values()}
    services = compose_config()["services"]
    resolved = {name: service["image"].replace("${LOCALSTACK_VERSION}", settings.get("LOCALSTACK_VERSION"))
                .replace("${PROMETHEUS_IMAGE}", settings.get("PROMETHEUS_IMAGE")) for name, service in services.items()}
    assert {resolved["localstack"], resolved["localstack-flow-control"], resolved["prometheus"]} == built
    assert services["grafana"]["image"] == "${GRAFANA_IMAGE}"
    # no service builds on its own: labctl/images.py is the one build path (offline base included)
    assert not any("build" in service for service in services.values())


def test_every_service_has_a_healthcheck_and_a_memory_limit():
    for name, service in compose_config()["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service["deploy"]["resources"]["limits"]["memory"], f"{name} has no memory limit"


def test_localstack_service_uses_the_process_executor_and_lab_settings_by_default():
    env = read_env_file(REPO_ROOT / ".env")
    assert env["LAMBDA_RUNTIME_EXECUTOR"] == "process"
    service_env = compose_config()["services"]["localstack"]["environment"]
    assert service_env["LAMBDA_RUNTIME_EXECUTOR"] == "${LAMBDA_RUNTIME_EXECUTOR}"
    assert service_env["LAMBDA_LIMITS_CONCURRENT_EXECUTIONS"] == "${LAB_ACCOUNT_CONCURRENCY}"
    assert service_env["DISABLE_EVENTS"] == "1"
