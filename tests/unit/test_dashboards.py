"""The dashboard lint, the committed JSON being what the code generates, and the issue's panels."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import yaml

from grafana.build import APP_FILE, DASHBOARDS_DIR, DATASOURCE_UID, HOME_FILE, OVERVIEW_UID, generate, main
from grafana.lint import lint
from lab_kernel import topologies
from lab_kernel.settings import REPO_ROOT


@pytest.fixture(scope="module")
def boards() -> dict[str, dict]:
    return generate()


def test_generated_dashboards_lint_clean(boards) -> None:
    assert lint(boards, DATASOURCE_UID) == []


def test_committed_json_is_up_to_date(capsys) -> None:
    assert main(["--check"]) == 0, capsys.readouterr().err
    committed = {p.name: json.loads(p.read_text()) for p in DASHBOARDS_DIR.glob("*.json")}
    assert committed == generate()


def _titles(board: dict) -> list[str]:
    return [p["title"] for p in board["panels"]]


@pytest.mark.parametrize("needle", [
    "Courier success %", "429s", "Delivery function success %", "Concurrency per function",
    "Account concurrency vs limit", "Invocations per function", "Errors per function",
    "Throttles per function", "Duration p50 / p95", "Queue depth", "Oldest message age",
    "Orders accepted vs delivered", "Actual success rate", "Delivery latency",
    "Locust: requests/s, failures/s",
])
def test_issue_panels_exist_per_topology_and_side_by_side(boards, needle) -> None:
    for topology in ("no-flow-control", "flow-control"):
        assert any(needle in t for t in _titles(boards[f"{topology}.json"])), (needle, topology)
        side = [p for p in boards[HOME_FILE]["panels"]
                if needle in p["title"] and p["title"].endswith(f" - {topology}")]
        assert side, (needle, topology)
        # side by side, one column per catalogue topology: no-flow-control first, flow-control next
        width = 24 // len(topologies.names())
        assert side[0]["gridPos"]["x"] == (0 if topology == "no-flow-control" else width)


def test_queries_select_their_own_topology_only(boards) -> None:
    for topology in ("no-flow-control", "flow-control"):
        other = "flow-control" if topology == "no-flow-control" else "no-flow-control"
        for panel in boards[f"{topology}.json"]["panels"]:
            for target in panel["targets"]:
                assert f'topology="{topology}"' in target["expr"]
                assert f'topology="{other}"' not in target["expr"]


def test_units_and_thresholds(boards) -> None:
    panels = {p["title"]: p for p in boards["flow-control.json"]["panels"]}
    limit = panels["Account concurrency vs limit"]["fieldConfig"]["defaults"]
    env = dict(line.split("=", 1) for line in (REPO_ROOT / ".env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert limit["thresholds"]["steps"][-1]["value"] == round(0.8 * int(env["LAB_ACCOUNT_CONCURRENCY"]))
    assert panels["Courier success %"]["fieldConfig"]["defaults"]["unit"] == "percent"
    assert panels["Duration p50 / p95 per function"]["fieldConfig"]["defaults"]["unit"] == "s"
    assert panels["Locust: requests/s, failures/s and target"]["fieldConfig"]["defaults"]["unit"] == "reqps"


@pytest.mark.parametrize(("breakage", "message"), [
    (lambda p: p["targets"][0].update(expr="sum(rate(lab_lambda_invocatons_total[1m]))"),
     "unknown metric lab_lambda_invocatons_total"),
    (lambda p: p["targets"][0].update(expr="sum(rate(lab_lambda_invocations_total[1m])"),
     "unclosed left parenthesis"),
    (lambda p: p["datasource"].update(uid="other"), "datasource uid is not 'lab-prometheus'"),
    (lambda p: p["fieldConfig"]["defaults"].pop("unit"), "no unit"),
    (lambda p: p["fieldConfig"]["defaults"]["thresholds"].update(steps=[]), "no thresholds"),
    (lambda p: p["fieldConfig"]["defaults"].update(max=120), "bounded 0-100"),
    (lambda p: p["targets"][0].update(expr="up{topology=\"$topology\"}"), "undefined variable"),
    (lambda p: p["gridPos"].update(x=25 - p["gridPos"]["w"]), "outside the 24-column grid"),
    (lambda p: p["gridPos"].update(y=8), "overlap"),
])
def test_lint_catches(boards, breakage, message) -> None:
    if "unclosed" in message and shutil.which("promtool") is None:
        pytest.skip("promtool not installed (scripts/install-system-deps.sh)")
    broken = copy.deepcopy(boards)
    breakage(broken[HOME_FILE]["panels"][0])  # Courier success %, a percent panel
    problems = lint(broken, DATASOURCE_UID)
    assert any(message in p for p in problems), problems


def test_the_app_dashboard_selects_by_its_variables_not_by_topology(boards) -> None:
    board = boards[APP_FILE]
    assert [v["name"] for v in board["templating"]["list"]] == ["account", "function", "api"]
    for panel in board["panels"]:
        for target in panel["targets"]:
            assert 'account="$account"' in target["expr"], panel["title"]
            assert "topology" not in target["expr"], panel["title"]
    uses = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    assert 'function_name=~"$function"' in uses and 'api_name=~"$api"' in uses


@pytest.mark.parametrize(("breakage", "message"), [
    (lambda b: b["panels"][0]["targets"][0].update(expr='up{account="$acount"}'), "undefined variable(s) ['$acount']"),
    (lambda b: b["templating"]["list"][1].update(query="up"), "query is not label_values"),
    (lambda b: b["templating"]["list"][1].update(query="label_values(lab_lambda_invocatons_total, x)"),
     "unknown metric lab_lambda_invocatons_total"),
    (lambda b: b["templating"]["list"][2].update(query='label_values(up{account="$accnt"}, api_name)'),
     "undefined variable(s) ['$accnt']"),
    (lambda b: b["templating"]["list"][0]["datasource"].update(uid="other"), "datasource uid is not"),
])
def test_lint_checks_the_dashboards_own_variables(boards, breakage, message) -> None:
    broken = copy.deepcopy(boards)
    breakage(broken[APP_FILE])
    problems = lint(broken, DATASOURCE_UID)
    assert any(message in p for p in problems), problems


def test_provisioning_points_at_the_fixed_uid_and_the_home_dashboard() -> None:
    grafana = REPO_ROOT / "grafana"
    datasources = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    assert datasources["datasources"][0]["uid"] == DATASOURCE_UID
    assert datasources["datasources"][0]["jsonData"]["timeInterval"] == "5s"
    provider = yaml.safe_load((grafana / "provisioning/dashboards/lab.yml").read_text())
    assert provider["providers"][0]["folder"] == "Serverless Boundary Lab"
    # compose mounts grafana/ and names the home dashboard and the anonymous viewer
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    env = compose["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    mounts = {v.split(":")[0]: v.split(":")[1] for v in compose["volumes"]}
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(mounts["./grafana/dashboards"] + "/")
    assert json.loads((DASHBOARDS_DIR / home.rsplit("/", 1)[1]).read_text())["uid"] == OVERVIEW_UID


# Grafana 10.4 (GRAFANA_IMAGE in .env) migrates dashboards up to schemaVersion 39; a newer one
# it would not read.
GRAFANA_10_4_SCHEMA_VERSION = 39


def schema_problems(board: dict) -> list[str]:
    """Where `board` differs from itself decoded by grafana-foundation-sdk's Dashboard model (types
    generated from Grafana's dashboard schema) and encoded again: a field the schema lacks is lost
    on the way, so it shows here."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    again = json.loads(json.dumps(Dashboard.from_json(copy.deepcopy(board)), cls=JSONEncoder))
    problems: list[str] = []

    def compare(a, b, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in a.keys() - b.keys():
                problems.append(f"{path}/{key}: not in the dashboard schema")
            for key in a.keys() & b.keys():
                compare(a[key], b[key], f"{path}/{key}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                compare(x, y, f"{path}[{i}]")
        elif a != b:
            problems.append(f"{path}: {a!r} reads back as {b!r}")

    compare(board, again, "")
    return problems


def test_committed_dashboards_follow_grafanas_dashboard_schema() -> None:
    env = dict(line.split("=", 1) for line in (REPO_ROOT / ".env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["GRAFANA_IMAGE"].startswith("grafana/grafana:10.4."), "the dashboards target Grafana 10.4"
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        board = json.loads(path.read_text())
        assert schema_problems(board) == [], path.name
        assert board["schemaVersion"] <= GRAFANA_10_4_SCHEMA_VERSION, path.name


def test_schema_check_catches_a_field_grafana_does_not_know(boards) -> None:
    broken = copy.deepcopy(boards[HOME_FILE])
    broken["refreshh"] = "5s"
    broken["templating"] = {"lists": []}
    broken["panels"][0]["gridPoss"] = {"x": 0}
    broken["panels"][0]["fieldConfig"]["defaults"]["unitt"] = "s"
    problems = schema_problems(broken)
    assert "/panels[0]/gridPoss: not in the dashboard schema" in problems
    assert "/panels[0]/fieldConfig/defaults/unitt: not in the dashboard schema" in problems
    assert "/refreshh: not in the dashboard schema" in problems
    assert "/templating/lists: not in the dashboard schema" in problems
