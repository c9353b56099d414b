"""`python -m load`: one-line errors before Locust starts, and the Locust command it builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab_kernel.settings import Settings
from load import cli


def _endpoints(tmp_path: Path) -> Path:
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"topologies": {
        "no-flow-control": {"notify_url": "http://127.0.0.1:1/_aws/execute-api/a/Prod/notify"},
        "flow-control": {"notify_url": "http://127.0.0.1:1/_aws/execute-api/b/Prod/notify"},
    }}))
    return path


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--profile", "nope"], "unknown profile 'nope': choose one of seed, seed-code, smoke"),
    (["run", "--profile", "smoke"], "missing.json: run `make up` first"),
])
def test_bad_configuration_is_one_line_and_exit_2(tmp_path, capsys, argv, message) -> None:
    code = cli.main([*argv, "--endpoints", str(tmp_path / "missing.json"),
                     "--reports", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_bad_metrics_port_setting(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LAB_LOCUST_METRICS_PORT", "ninety")
    code = cli.main(["run", "--profile", "smoke", "--endpoints", str(_endpoints(tmp_path)),
                     "--reports", str(tmp_path / "reports")])
    assert code == 2
    assert "LAB_LOCUST_METRICS_PORT='ninety' is not a TCP port" in capsys.readouterr().err


def test_locust_command_headless_and_ui(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LAB_LOCUST_PORT", "8123")
    monkeypatch.setenv("LAB_LOCUST_METRICS_PORT", "9123")
    monkeypatch.delenv("LAB_LOCUST_METRICS_HOST", raising=False)
    settings = Settings.load()
    parser = cli._parser()
    run = cli.locust_argv(parser.parse_args(["run", "--profile", "smoke", "--topology", "flow-control"]),
                          tmp_path, settings)
    assert "--headless" in run
    assert run[run.index("--lab-topology") + 1] == "flow-control"
    assert run[run.index("--lab-metrics-port") + 1] == "9123"
    assert run[run.index("--csv") + 1] == str(tmp_path / "locust")
    assert run[run.index("--html") + 1] == str(tmp_path / "report.html")
    ui = cli.locust_argv(parser.parse_args(["ui"]), tmp_path, settings)
    assert "--headless" not in ui and ui[ui.index("--web-port") + 1] == "8123"
    assert ui[ui.index("--web-host") + 1] == "127.0.0.1"


def test_metrics_listen_beyond_loopback_only_in_compose_mode(monkeypatch) -> None:
    monkeypatch.delenv("LAB_LOCUST_METRICS_HOST", raising=False)
    settings = Settings.load()
    assert cli.metrics_host(settings, "host") == "127.0.0.1"
    assert cli.metrics_host(settings, None) == "127.0.0.1"
    assert cli.metrics_host(settings, "docker") == "0.0.0.0"
    monkeypatch.setenv("LAB_LOCUST_METRICS_HOST", "127.0.0.2")
    assert cli.metrics_host(Settings.load(), "docker") == "127.0.0.2"


def test_without_endpoints_the_environments_file_is_read_when_the_command_runs(tmp_path, capsys, monkeypatch) -> None:
    # a test (or a second, private lab) sets LAB_ENDPOINTS_FILE after the load package was imported
    monkeypatch.setenv("LAB_ENDPOINTS_FILE", str(tmp_path / "other-lab.json"))
    code = cli.main(["run", "--profile", "smoke", "--reports", str(tmp_path / "reports")])
    assert code == 2
    assert "other-lab.json: run `make up` first" in capsys.readouterr().err
