"""`python -m grafana.build` (`make dashboards`): generate the dashboards from `grafana/panels.py`
with grafana-foundation-sdk into `grafana/dashboards/*.json`, then lint them.

`--check` regenerates in memory and fails if the committed JSON differs (CI / tests).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import timeseries as ts_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dash_m

from grafana.lint import lint
from grafana.panels import APP_SELECTOR, APP_VARIABLES, TOPOLOGIES, PanelSpec, app_catalogue, catalogue
from lab_kernel import topologies as lab_topologies
from lab_kernel.settings import REPO_ROOT, Settings, read_env_file

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE_UID = "lab-prometheus"  # fixed: provisioning/datasources/prometheus.yml
DATASOURCE = dash_m.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
OVERVIEW_UID = "lab-overview"
APP_UID = "lab-app"
APP_FILE = "app.json"
# the home dashboard: docker-compose.yml names it in GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH
HOME_FILE = "home.json"
TAG = "serverless-boundary-lab"
HEIGHT = {"timeseries": 8, "stat": 6}


def _thresholds(spec: PanelSpec) -> dash_b.ThresholdsConfig:
    return (
        dash_b.ThresholdsConfig()
        .mode(dash_m.ThresholdsMode.ABSOLUTE)
        .steps([dash_m.Threshold(value=v, color=c) for v, c in spec.thresholds])
    )


def _targets(spec: PanelSpec, selector: str) -> list[prom_b.Dataquery]:
    targets = []
    for i, q in enumerate(spec.with_selector(selector)):
        target = (
            prom_b.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(chr(ord("A") + i))
            .datasource(DATASOURCE)
        )
        # a stat shows the last value; its sparkline needs the range too
        targets.append(target.range_and_instant() if spec.kind == "stat" else target.range())
    return targets


def panel(spec: PanelSpec, selector: str, title: str, x: int, y: int, w: int) -> object:
    grid = dash_m.GridPos(h=HEIGHT[spec.kind], w=w, x=x, y=y)
    if spec.kind == "stat":
        builder = (
            stat_b.Panel()
            .graph_mode(common.BigValueGraphMode.AREA)
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]))
        )
    else:
        builder = (
            ts_b.Panel()
            .line_width(2)
            .fill_opacity(10)
            .legend(common_b.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                    .placement(common.LegendPlacement.BOTTOM).show_legend(True))
            .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                     .sort(common.SortOrder.DESCENDING))
        )
        if spec.show_thresholds:
            builder = builder.thresholds_style(
                common_b.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE)
            )
        if "right_axis_seconds" in spec.extra:
            builder = builder.override_by_name(
                spec.extra["right_axis_seconds"],
                [dash_m.DynamicConfigValue(id_val="unit", value="s"),
                 dash_m.DynamicConfigValue(id_val="custom.axisPlacement", value="right")],
            )
    builder = (
        builder.title(title)
        .description(spec.description)
        .datasource(DATASOURCE)
        .grid_pos(grid)
        .unit(spec.unit)
        .thresholds(_thresholds(spec))
        .targets(_targets(spec, selector))
    )
    if spec.min is not None:
        builder = builder.min(spec.min)
    if spec.max is not None:
        builder = builder.max(spec.max)
    return builder


def _base(uid: str, title: str, description: str) -> dash_b.Dashboard:
    links = [
        dash_b.DashboardLink("Lab dashboards").type(dash_m.DashboardLinkType.DASHBOARDS)
        .tags([TAG]).as_dropdown(True).keep_time(True).include_vars(False)
        .target_blank(False).icon("external link").tooltip("").url("")
    ]
    return (
        dash_b.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .time("now-30m", "now")
        .refresh("5s")
        .timezone("browser")
        .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .links(links)
    )


def overview(specs: tuple[PanelSpec, ...]) -> dict:
    """The home dashboard: every panel for every catalogue topology, one column each, side by side."""
    topologies = lab_topologies.catalogue().topologies
    width = max(1, 24 // len(topologies))
    places = ("left", "right") if len(topologies) == 2 else tuple(f"column {i + 1}" for i in range(len(topologies)))
    columns = " and ".join(f"{t.name} ({place})" for t, place in zip(topologies, places, strict=True))
    board = _base(
        OVERVIEW_UID, "Serverless Boundary Lab: " + " vs ".join(t.title for t in topologies),
        f"The article's graphs for {'both' if len(topologies) == 2 else 'all'} topologies at once: "
        f"{columns}, under the same Locust profile.",
    )
    pid, y = 1, 0
    for spec in specs:
        for column, topology in enumerate(TOPOLOGIES):
            if topology in spec.topologies:
                board = board.with_panel(
                    panel(spec, _topology_selector(topology), f"{spec.title} - {topology}",
                          width * column, y, width).id(pid)
                )
                pid += 1
        y += HEIGHT[spec.kind]
    return _encode(board)


def per_topology(specs: tuple[PanelSpec, ...], topology: str) -> dict:
    board = _base(
        f"lab-{topology}", f"Serverless Boundary Lab: {topology}",
        f"Every panel of the {topology} topology (account {lab_topologies.get(topology).account}).",
    )
    return _encode(_grid(board, [s for s in specs if topology in s.topologies],
                         _topology_selector(topology)))


def _topology_selector(topology: str) -> str:
    return f'topology="{topology}"'


def _grid(board: dash_b.Dashboard, specs: list[PanelSpec], selector: str) -> dash_b.Dashboard:
    """The panels left to right, a new row when the next one does not fit the 24 columns."""
    pid, x, y, row_height = 1, 0, 0, 0
    for spec in specs:
        width = spec.width
        if x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        board = board.with_panel(panel(spec, selector, spec.title, x, y, width).id(pid))
        pid += 1
        x += width
        row_height = max(row_height, HEIGHT[spec.kind])
    return board


def app(specs: tuple[PanelSpec, ...]) -> dict:
    """Any app of any account (issue #18): the functions, APIs and queues a stack created, chosen
    with the dashboard's variables, which Grafana fills from what Prometheus holds."""
    board = _base(
        APP_UID, "Serverless Boundary Lab: any app (account, function, API)",
        "Every function, API and queue of one account, whatever deployed them (the bootstrap, "
        "`sam deploy`, `aws cloudformation deploy`): choose the account, then functions and APIs.",
    )
    for name, (query, multi) in APP_VARIABLES.items():
        variable = (
            dash_b.QueryVariable(name).label(name).datasource(DATASOURCE).query(query)
            .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dash_m.VariableSort.ALPHABETICAL_ASC)
        )
        if multi:
            variable = variable.multi(True).include_all(True).all_value(".*")
        board = board.with_variable(variable)
    return _encode(_grid(board, list(specs), APP_SELECTOR))


def _encode(board: dash_b.Dashboard) -> dict:
    return json.loads(JSONEncoder(sort_keys=True).encode(board.build()))


def account_limit() -> int:
    """The limit from `.env` itself (not the environment), so the JSON is the same for everyone."""
    return Settings(read_env_file(REPO_ROOT / ".env")).integer("LAB_ACCOUNT_CONCURRENCY", 1)


def generate() -> dict[str, dict]:
    specs = catalogue(account_limit())
    boards = {HOME_FILE: overview(specs)}
    for topology in TOPOLOGIES:
        boards[f"{topology}.json"] = per_topology(specs, topology)
    boards[APP_FILE] = app(app_catalogue())
    return boards


def render(board: dict) -> str:
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is stale")
    args = parser.parse_args(argv)
    boards = generate()
    problems = lint(boards, DATASOURCE_UID)
    for problem in problems:
        print(f"lint: {problem}", file=sys.stderr)
    if problems:
        return 1
    stale = []
    for name, board in boards.items():
        path = DASHBOARDS_DIR / name
        text = render(board)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    queries = sum(len(p.get("targets", [])) for b in boards.values() for p in b["panels"])
    panels = sum(len(b["panels"]) for b in boards.values())
    if stale:
        print(f"error: {', '.join(stale)} out of date: run `make dashboards`", file=sys.stderr)
        return 1
    verb = "checked" if args.check else "wrote"
    print(f"dashboards: {verb} {len(boards)} dashboards, {panels} panels, {queries} queries "
          f"in {DASHBOARDS_DIR.relative_to(REPO_ROOT)}; lint clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
