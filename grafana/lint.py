"""Lint of dashboard JSON (generated or hand-edited): what Grafana would not complain about but
a workshop would. Returns problems as one-line strings; `python -m grafana.build` runs it.

Checks: fixed datasource uid everywhere; unique dashboard uids, panel ids, titles and query refIds;
panels inside the 24-column grid and not overlapping; a unit, thresholds (ascending, with a base)
and a description on every panel; percent panels bounded 0-100; only Grafana's built-in
variables and the dashboard's own (templating); every metric named in docs/METRICS.md or by Locust's exporter; PromQL that parses
(Debian's `promtool`, when installed).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from lab_kernel.settings import REPO_ROOT

METRICS_DOC = REPO_ROOT / "docs" / "METRICS.md"
BUILTIN_VARIABLES = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s"}
METRIC_RE = re.compile(r"\b((?:lab|emf|locust)_[a-z0-9_]+)\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def contract_metrics() -> set[str]:
    """The families docs/METRICS.md names (`lab_*` from the platform, `emf_*` from the functions)."""

    names: set[str] = set()
    for line in METRICS_DOC.read_text().splitlines():
        for cell in (c.strip() for c in line.split("|")):
            match = re.fullmatch(r"`((?:lab|emf)_[a-z0-9_]+)`", cell)
            if match:
                names.add(match.group(1))
    return names


def known_metrics() -> set[str]:
    """Series names the dashboards may use: the platform contract and Locust's exporter."""

    from load.metrics import LocustMetrics

    names = contract_metrics()
    locust = LocustMetrics()
    locust.init_topology("any")  # labelled families only list samples once a label set exists
    locust.phase.labels(profile="any")
    for family in locust.registry.collect():
        for sample in family.samples:
            names.add(sample.name)
    expanded = set(names)
    for name in names:
        if name.endswith("_seconds") or name.endswith("_bucket"):
            base = name.removesuffix("_bucket")
            expanded.update(base + s for s in HISTOGRAM_SUFFIXES)
    return expanded


# what a dashboard variable stands for when an expression is parsed: a label value or a regex
VARIABLE_PLACEHOLDER = "lint"


def board_variables(board: dict) -> list[str]:
    return [v["name"] for v in (board.get("templating") or {}).get("list") or [] if v.get("name")]


def substitute(expr: str, variables: list[str] = ()) -> str:
    for variable, value in BUILTIN_VARIABLES.items():
        expr = expr.replace(variable, value)
    # longest first: $api must not eat the start of $api_stage
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", VARIABLE_PLACEHOLDER).replace(f"${name}", VARIABLE_PLACEHOLDER)
    return expr


def _variable_problems(name: str, board: dict, datasource_uid: str, known: set[str]) -> list[str]:
    problems = []
    names = board_variables(board)
    for variable in (board.get("templating") or {}).get("list") or []:
        where = f"{name} variable {variable.get('name')!r}"
        if (variable.get("datasource") or {}).get("uid") != datasource_uid:
            problems.append(f"{where}: datasource uid is not {datasource_uid!r}")
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else (query or "")
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        if not match:
            problems.append(f"{where}: query is not label_values(series, label): {query!r}")
            continue
        for metric in METRIC_RE.findall(match.group(1)):
            if metric not in known:
                problems.append(f"{where}: unknown metric {metric} (not in docs/METRICS.md)")
        leftover = set(re.findall(r"\$\{?\w+", substitute(match.group(1), names)))
        if leftover:
            problems.append(f"{where}: undefined variable(s) {sorted(leftover)}")
    return problems


def _panel_problems(where: str, panel: dict, datasource_uid: str, known: set[str],
                    variables: list[str] = ()) -> list[str]:
    problems = []
    if (panel.get("datasource") or {}).get("uid") != datasource_uid:
        problems.append(f"{where}: datasource uid is not {datasource_uid!r}")
    if not panel.get("description"):
        problems.append(f"{where}: no description")
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit")
    if not unit:
        problems.append(f"{where}: no unit")
    if unit == "percent" and (defaults.get("min") != 0 or defaults.get("max") != 100):
        problems.append(f"{where}: a percent panel must be bounded 0-100")
    steps = ((defaults.get("thresholds") or {}).get("steps")) or []
    if not steps:
        problems.append(f"{where}: no thresholds")
    elif steps[0].get("value") is not None:
        problems.append(f"{where}: the first threshold step must be the base (value null)")
    values = [s["value"] for s in steps[1:]]
    if values != sorted(values) or len(set(values)) != len(values):
        problems.append(f"{where}: threshold values must ascend: {values}")
    targets = panel.get("targets") or []
    if not targets:
        problems.append(f"{where}: no queries")
    ref_ids = [t.get("refId") for t in targets]
    if len(set(ref_ids)) != len(ref_ids):
        problems.append(f"{where}: duplicate refIds {ref_ids}")
    for target in targets:
        at = f"{where} query {target.get('refId')}"
        expr = target.get("expr") or ""
        if not expr.strip():
            problems.append(f"{at}: empty expr")
        if (target.get("datasource") or {}).get("uid") != datasource_uid:
            problems.append(f"{at}: datasource uid is not {datasource_uid!r}")
        if not target.get("legendFormat"):
            problems.append(f"{at}: no legendFormat")
        leftover = set(re.findall(r"\$\{?\w+", substitute(expr, variables)))
        if leftover:
            problems.append(f"{at}: undefined variable(s) {sorted(leftover)}")
        for metric in METRIC_RE.findall(expr):
            if metric not in known:
                problems.append(f"{at}: unknown metric {metric} (not in docs/METRICS.md)")
    return problems


def _overlaps(panels: list[dict]) -> list[tuple[str, str]]:
    cells: dict[tuple[int, int], str] = {}
    clashes = []
    for panel in panels:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells and cells[(x, y)] != panel["title"]:
                    clashes.append((cells[(x, y)], panel["title"]))
                cells[(x, y)] = panel["title"]
    return sorted(set(clashes))


def promtool_problems(exprs: list[str]) -> list[str]:
    """Parse every expression (variables already substituted) with `promtool check rules`."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return []
    rules = [{"record": f"lint:q{i}", "expr": e} for i, e in enumerate(exprs)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "lint", "rules": rules}]}))
        result = subprocess.run([promtool, "check", "rules", str(path)],
                                capture_output=True, text=True, timeout=60)
    if result.returncode == 0:
        return []
    return [f"promtool: {line.strip()}" for line in (result.stdout + result.stderr).splitlines()
            if line.strip() and "FAILED" not in line and "Checking" not in line] or ["promtool failed"]


def lint(boards: dict[str, dict], datasource_uid: str) -> list[str]:
    problems: list[str] = []
    known = known_metrics()
    uids: dict[str, str] = {}
    exprs: list[str] = []
    for name, board in boards.items():
        uid = board.get("uid")
        if not uid:
            problems.append(f"{name}: no uid")
        elif uid in uids:
            problems.append(f"{name}: uid {uid!r} also used by {uids[uid]}")
        else:
            uids[uid] = name
        variables = board_variables(board)
        problems += _variable_problems(name, board, datasource_uid, known)
        panels = board.get("panels") or []
        if not panels:
            problems.append(f"{name}: no panels")
        ids = [p.get("id") for p in panels]
        if len(set(ids)) != len(ids):
            problems.append(f"{name}: duplicate panel ids")
        titles = [p.get("title") for p in panels]
        for title in {t for t in titles if titles.count(t) > 1}:
            problems.append(f"{name}: duplicate panel title {title!r}")
        for panel in panels:
            where = f"{name} panel {panel.get('title')!r}"
            grid = panel.get("gridPos") or {}
            if not {"x", "y", "w", "h"} <= set(grid) or grid["x"] + grid["w"] > 24 or grid["w"] < 1:
                problems.append(f"{where}: gridPos outside the 24-column grid: {grid}")
            problems += _panel_problems(where, panel, datasource_uid, known, variables)
            exprs += [substitute(t["expr"], variables) for t in panel.get("targets") or [] if t.get("expr")]
        if all({"x", "y", "w", "h"} <= set(p.get("gridPos") or {}) for p in panels):
            for a, b in _overlaps(panels):
                problems.append(f"{name}: panels {a!r} and {b!r} overlap")
    return problems + promtool_problems(sorted(set(exprs)))
