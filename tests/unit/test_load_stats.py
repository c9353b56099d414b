"""Per-phase counting, progress lines, targets file parsing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lab_kernel import topologies
from load.profiles import get_profile
from load.stats import RunStats
from load.targets import TargetError, load_targets, selected_topologies


def test_sends_are_counted_in_the_phase_they_start_in(tmp_path: Path) -> None:
    profile = get_profile("smoke")
    stats = RunStats(profile, ("no-flow-control", "flow-control"))
    for t in (0, 5, 19.999):
        stats.on_send("no-flow-control", t, t)
    phase = stats.on_send("no-flow-control", 20.0, 19.9)  # the boundary starts phase 2
    stats.on_result("no-flow-control", phase, 0.05, failed=True)
    stats.on_send("flow-control", 800, 319.9)  # a late ticket after the end: last phase
    rows = {(r.index, r.topology): r for r in stats.results()}
    assert rows[(0, "no-flow-control")].sent == 3
    assert rows[(1, "no-flow-control")].sent == 1
    assert rows[(1, "no-flow-control")].failed == 1
    assert rows[(3, "flow-control")].sent == 1
    assert rows[(0, "no-flow-control")].actual_rate == pytest.approx(0.15)  # 3 sends in 20 s
    assert rows[(0, "no-flow-control")].deviation == pytest.approx(0.15 / 2 - 1)
    assert rows[(1, "no-flow-control")].target_rate == pytest.approx(3.5)

    stats.write(tmp_path, {"profile": "smoke"})
    table = list(csv.DictReader(open(tmp_path / "phases.csv")))
    assert len(table) == 8 and table[0]["sent"] == "3"
    facts = json.loads((tmp_path / "phases.json").read_text())
    assert facts["profile"] == "smoke" and facts["max_lateness_s"]["flow-control"] > 300


def test_progress_line_names_phase_target_and_actual() -> None:
    stats = RunStats(get_profile("smoke"), ("flow-control",))
    for i in range(40):
        stats.on_send("flow-control", 45 + i * 0.125, 45 + i * 0.125)
    line = stats.progress_line(50.0, users=30, backlog=0)
    assert "phase 3/4 'ramp past the courier limit'" in line
    assert "target  5.10 req/s" in line  # 4 + 11 * 10/100
    assert "flow-control  8.00 req/s" in line  # 40 sends in the last 5 s


def test_targets_from_endpoints_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(topologies.SELECTION_VARIABLE, raising=False)
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"topologies": {
        "no-flow-control": {"account": "111111111111", "notify_url": "http://a/_aws/execute-api/a/Prod/notify"},
        "flow-control": {"account": "222222222222", "notify_url": "http://b/_aws/execute-api/b/Prod/notify"},
    }}))
    assert [t.notify_url for t in load_targets("both", path)] == ["http://a/_aws/execute-api/a/Prod/notify", "http://b/_aws/execute-api/b/Prod/notify"]
    assert [t.topology for t in load_targets("flow-control", path)] == ["flow-control"]
    with pytest.raises(TargetError, match="unknown topology 'nowhere' in TOPOLOGIES: choose from no-flow-control, "):
        selected_topologies("nowhere")
    assert selected_topologies("all") == topologies.names()
    assert selected_topologies("flow-control,no-flow-control") == selected_topologies("both") == selected_topologies(None)
    with pytest.raises(TargetError, match="no .*: run `make up` first"):
        load_targets("both", tmp_path / "missing.json")
    path.write_text(json.dumps({"topologies": {"flow-control": {"notify_url": "http://b/_aws/execute-api/b/Prod/notify"}}}))
    with pytest.raises(TargetError, match="'no-flow-control' has no http"):
        load_targets("both", path)
    path.write_text(json.dumps({"topologies": {"flow-control": {"notify_url": "ftp://x"}}}))
    with pytest.raises(TargetError, match="off its schema at topologies/flow-control/notify_url"):
        load_targets("flow-control", path)

