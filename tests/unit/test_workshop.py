"""docs/WORKSHOP.md says only what the lab has: every command it gives runs (`make -n`), every
variable and profile exists, every Grafana panel, report plot and metric it names is one the lab
draws or exports. tests/integration/test_workshop_promql.py asks a real Prometheus its queries.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from functools import cache

import botocore.session
import jmespath
import pytest
import yaml
from botocore import xform_name

from bootstrap.topology import DELIVERIES_TABLE, REGION, TOPOLOGIES
from grafana.build import DASHBOARDS_DIR, generate
from grafana.lint import known_metrics, promtool_problems
from grafana.panels import COURIER_API, COURIER_FUNCTION, DELIVERY, NOTIFICATION
from grafana.panels import TOPOLOGIES as TOPOLOGY_NAMES
from lab_kernel.settings import LOCALSTACK_BY_TOPOLOGY, REPO_ROOT, read_env_file
from lab_kernel.endpoints import parse
from report.panels import ORDERS_FROM_LOGS, panels

GUIDE = REPO_ROOT / "docs" / "WORKSHOP.md"
MAKEFILE = REPO_ROOT / "Makefile"
PROFILES = REPO_ROOT / "load" / "profiles.toml"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
STEP = re.compile(r"^## (\d+)\. ", re.M)
PLOT = re.compile(r"reports/<run>/plots/([A-Za-z0-9_-]+)\.png")
PROFILE_VARIABLES = ("PROFILE", "EXPERIMENT_PROFILE")
# commands that are neither `make` nor the AWS CLI, allowed as they are
PLAIN_COMMANDS = {"echo $?"}


@cache
def text() -> str:
    return GUIDE.read_text()


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text()) if lang == language]


def prose() -> str:
    return FENCE.sub("", text())


def shell_commands() -> list[str]:
    """Every command of the ```bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for body in blocks("bash"):
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def make_commands() -> list[str]:
    """`make ...` in code blocks, and inline in the prose (`make load`)."""
    inline = re.findall(r"`(make(?: [^`]*)?)`", prose())
    return list(dict.fromkeys([c for c in shell_commands() if c.split()[0] == "make"] + inline))


def sections() -> dict[int, str]:
    """Step number -> its text (to the next step)."""
    marks = list(STEP.finditer(text()))
    return {int(m.group(1)): text()[m.start(): marks[i + 1].start() if i + 1 < len(marks) else None]
            for i, m in enumerate(marks)}


def grafana_titles() -> list[str]:
    """The **bold** titles of every `- Grafana...` bullet (which may wrap onto indented lines)."""
    titles = []
    for item in re.findall(r"^- Grafana[^\n]*(?:\n  [^\n]*)*", prose(), re.M):
        titles += re.findall(r"\*\*(.+?)\*\*", " ".join(item.split()))
    return titles


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE.read_text(), re.M))


def profiles() -> set[str]:
    return set(tomllib.loads(PROFILES.read_text())["profiles"])


# --- the guide's shape ---------------------------------------------------------------------------

def test_steps_are_numbered_from_make_up_to_make_down() -> None:
    steps = sections()
    assert list(steps) == list(range(1, len(steps) + 1)) and len(steps) >= 8
    first, last = steps[1], steps[len(steps)]
    assert "make up" in first and "make down" in last
    commands = " | ".join(make_commands())
    for needed in ("make preview PROFILE=smoke", "make load PROFILE=smoke", "make report",
                   "make story ID=", "make experiment", "make experiment EXPERIMENT_PROFILE=seed"):
        assert needed in commands, needed


def test_every_step_with_a_grafana_panel_gives_the_host_mode_query() -> None:
    with_panels = [n for n, body in sections().items() if "\n- Grafana" in body]
    assert len(with_panels) >= 5
    for n in with_panels:
        assert "```promql" in sections()[n], f"step {n}: Grafana panels but no PromQL (host mode)"


def test_readme_links_the_guide() -> None:
    assert "(docs/WORKSHOP.md)" in (REPO_ROOT / "README.md").read_text()


def test_relative_links_resolve() -> None:
    links = re.findall(r"\]\(([^)#:]+)\)", text())
    assert links
    for link in links:
        assert (GUIDE.parent / link).exists(), link


def test_lab_urls_use_the_default_ports() -> None:
    ports = {v for k, v in read_env_file(REPO_ROOT / ".env").items() if k.endswith("_PORT")}
    used = re.findall(r"127\.0\.0\.1:(\d+)", text())
    assert used
    assert set(used) <= ports, set(used) - ports


# --- commands ------------------------------------------------------------------------------------

def test_every_command_is_one_this_test_checks() -> None:
    assert shell_commands()
    for command in shell_commands():
        words = shlex.split(command)
        program = next(w for w in words if "=" not in w)
        assert program in ("make", ".venv/bin/aws") or command in PLAIN_COMMANDS, command


@pytest.mark.parametrize("command", make_commands())
def test_make_command_dry_runs(command: str) -> None:
    args = shlex.split(command)[1:]
    assignments = dict(a.split("=", 1) for a in args if "=" in a)
    targets = [a for a in args if "=" not in a]
    assert targets, f"{command}: name the target (a bare `make` only prints help)"
    assert set(targets) <= makefile_targets(), f"{command}: no such target"
    makefile = MAKEFILE.read_text()
    for variable, value in assignments.items():
        assert f"$({variable})" in makefile, f"{command}: the Makefile does not read {variable}"
        if variable in PROFILE_VARIABLES:
            assert value in profiles(), f"{command}: no profile {value!r} in {PROFILES.name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    result = subprocess.run(["make", "-n", *args], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{command}: {result.stderr}"
    for variable, value in assignments.items():  # the value reaches the recipe
        assert value in result.stdout, f"{command}: {value!r} not in {result.stdout!r}"


def test_profiles_named_in_the_prose_exist() -> None:
    named = re.findall(r"\b(?:EXPERIMENT_)?PROFILE=([\w-]+)", text())
    assert named
    assert set(named) <= profiles()


def _aws_commands() -> list[list[str]]:
    return [shlex.split(c) for c in shell_commands() if ".venv/bin/aws" in shlex.split(c)]


def test_aws_command_reads_the_courier_table_of_a_topology() -> None:
    commands = _aws_commands()
    assert commands, "the guide shows how to find a duplicated order"
    env_file = read_env_file(REPO_ROOT / ".env")
    accounts = {t.account: t.name for t in TOPOLOGIES}
    session = botocore.session.get_session()
    for words in commands:
        at = words.index(".venv/bin/aws")
        env = dict(w.split("=", 1) for w in words[:at])
        rest = words[at + 1:]
        options = {rest[i]: rest[i + 1] for i in range(len(rest) - 1) if rest[i].startswith("--")}
        positional = [w for i, w in enumerate(rest) if not w.startswith("--")
                      and (i == 0 or not rest[i - 1].startswith("--"))]
        # the topology's account (LocalStack maps the access key to it) on its own LocalStack
        topology = accounts[env["AWS_ACCESS_KEY_ID"]]
        port = env_file[LOCALSTACK_BY_TOPOLOGY[topology][1]]
        assert options["--endpoint-url"] == f"http://127.0.0.1:{port}"
        assert options["--region"] == REGION
        # an operation of the service, with options that are its input members
        service, operation = positional
        model = session.get_service_model(service)
        names = {xform_name(op, "-"): op for op in model.operation_names}
        shape = model.operation_model(names[operation]).input_shape
        members = {xform_name(m, "-") for m in shape.members}
        global_options = {"endpoint-url", "region", "query", "output"}
        own = {o.removeprefix("--") for o in options} - global_options
        assert own <= members, own - members
        assert options["--table-name"] == DELIVERIES_TABLE
        # the attribute the courier counts deliveries in, and a --query that reads a scan's items
        assert "deliveries" in options["--filter-expression"]
        assert '"deliveries"' in (REPO_ROOT / "lambdas" / "slow_api" / "app.py").read_text()
        json.loads(options["--expression-attribute-values"])
        scan = {"Items": [{"correlation_id": {"S": "abc"}, "deliveries": {"N": "2"}}]}
        assert jmespath.search(options["--query"], scan) == [["abc", "2"]]


# --- what to look at -----------------------------------------------------------------------------

def test_grafana_panel_titles_exist() -> None:
    titles = grafana_titles()
    assert len(titles) >= 10
    generated = {p["title"] for board in generate().values() for p in board["panels"]}
    committed = {p["title"] for path in DASHBOARDS_DIR.glob("*.json")
                 for p in json.loads(path.read_text())["panels"]}
    for title in titles:
        assert title in generated and title in committed, f"no Grafana panel titled {title!r}"


def test_report_plot_paths_are_plots_the_report_draws() -> None:
    endpoints = parse({"localstack_url": "http://x", "topologies": {t: {} for t in TOPOLOGY_NAMES}})
    slugs = {p.slug for p in panels(endpoints, 320)} | {ORDERS_FROM_LOGS.slug, "headline"}
    named = PLOT.findall(text())
    assert len(named) >= 8
    assert set(named) <= slugs, set(named) - slugs
    # no other spelling of a plot path slipped through
    assert len(re.findall(r"/plots/\S+\.png", text())) == len(named)


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (not functions, keywords or label names)."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges and subqueries
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    keywords = {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without"}
    return {name for name, call in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", expr)
            if not call and name.lower() not in keywords}


def recorded_metrics() -> set[str]:
    """Names of recording rules the committed Prometheus config loads (none today)."""
    names: set[str] = set()
    for path in (REPO_ROOT / "prometheus").glob("*.y*ml"):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups") or []:
            names |= {rule["record"] for rule in group.get("rules") or [] if "record" in rule}
    return names


def test_metric_names_extracted() -> None:
    expr = 'sum by (topology) (rate(a_total{x="b c"}[1m])) / (b or 0 * c)'
    assert metric_names(expr) == {"a_total", "b", "c"}


def test_promql_uses_known_metrics_and_label_values() -> None:
    exprs = [" ".join(b.split()) for b in blocks("promql")]
    assert len(exprs) >= 10
    known = known_metrics() | recorded_metrics()
    values = {
        "topology": set(TOPOLOGY_NAMES),
        "function_name": {NOTIFICATION, DELIVERY, COURIER_FUNCTION},
        "api_name": {COURIER_API},
        "status_class": {"2xx", "4xx", "5xx"},
    }
    for expr in exprs:
        assert "$" not in expr, f"Grafana variable in {expr} (Prometheus has none)"
        used = metric_names(expr)
        assert used, expr
        assert used <= known, f"{expr}: unknown metric(s) {used - known} (not in docs/METRICS.md)"
        for label, value in re.findall(r'(\w+)\s*=~?\s*"([^"]*)"', expr):
            if label in values:
                assert value in values[label], f"{expr}: {label}={value!r}"
    assert promtool_problems(exprs) == []
