"""Topologies that ran in turns, overlaid on the time since each one's own load started
(report.overlay), and the run folder that names the turns (report.experiment, report.runs)."""

from __future__ import annotations

import json
from pathlib import Path

from report import overlay
from report.experiment import _REPORTS_IN, combined_folder
from report.figures import Figures
from report.panels import with_gaps
from report.prom import Series
from report.render import ReportData, render
from report.runs import RunWindow, from_folder, run_order, turns

NFC_START, NFC_END = 1_800_000_000.0, 1_800_000_320.0
FC_START, FC_END = 1_800_000_900.0, 1_800_001_220.0  # after the first turn's drain


def windows(tmp_path: Path) -> dict[str, RunWindow]:
    return {
        "no-flow-control": RunWindow(tmp_path / "20270115T080000Z-smoke-no-flow-control", NFC_START, NFC_END,
                                     "smoke", "runA", True),
        "flow-control": RunWindow(tmp_path / "20270115T081500Z-smoke-flow-control", FC_START, FC_END,
                                  "smoke", "runB", True),
    }


def test_each_topology_is_moved_back_by_how_much_later_its_load_started(tmp_path: Path):
    w = windows(tmp_path)
    assert overlay.reference(w) == NFC_START
    assert overlay.offsets(w) == {"no-flow-control": 0.0, "flow-control": FC_START - NFC_START}


def test_each_turn_is_observed_until_the_next_turn_starts_the_last_until_now(tmp_path: Path):
    w = windows(tmp_path)
    now = FC_END + 600
    assert overlay.observed_until(w, now) == {"no-flow-control": FC_START, "flow-control": now}
    # a report written while the last load is still running still covers that load
    assert overlay.observed_until(w, FC_END - 10)["flow-control"] == FC_END


def test_a_series_lands_on_the_minute_of_its_own_load(tmp_path: Path):
    w = windows(tmp_path)
    moved = overlay.offsets(w)
    # a query over the flow-control turn answers both topologies: the idle one is dropped
    answered = [
        Series({"topology": "flow-control"}, [(FC_START, 1.0), (FC_START + 60, 2.0), (FC_START + 180, 3.0)]),
        Series({"topology": "no-flow-control"}, [(FC_START, 0.0), (FC_START + 60, 0.0)]),
    ]
    mine = overlay.own_series(answered, "flow-control", moved["flow-control"])
    assert [s.labels["topology"] for s in mine] == ["flow-control"]
    xs, ys = with_gaps(mine[0].points, overlay.reference(w))
    assert (xs, ys) == ([0.0, 1.0, 3.0], [1.0, 2.0, 3.0])  # minutes since its own load started
    # the first turn's series are not moved
    nfc = overlay.own_series([Series({"topology": "no-flow-control"}, [(NFC_START + 120, 5.0)])], "no-flow-control",
                             moved["no-flow-control"])
    assert with_gaps(nfc[0].points, overlay.reference(w))[0] == [2.0]
    assert overlay.shift_times([FC_START + 30], moved["flow-control"]) == [NFC_START + 30]


def test_each_topology_keeps_the_figures_of_its_own_turn():
    # read over the no-flow-control turn, flow-control was idle (and the other way round)
    during_nfc = Figures(peak_account_concurrency={"no-flow-control": 400, "flow-control": 0},
                         courier_429={"no-flow-control": 16000, "flow-control": 0},
                         lowest_delivery_success={"no-flow-control": 0.3}, source="Prometheus")
    during_fc = Figures(peak_account_concurrency={"no-flow-control": 3, "flow-control": 14},
                        peak_delivery_concurrency={"flow-control": 10}, courier_429={"no-flow-control": 0, "flow-control": 0},
                        lowest_delivery_success={"flow-control": 0.99}, source="Prometheus")
    f = overlay.pick({"no-flow-control": during_nfc, "flow-control": during_fc})
    assert f.peak_account_concurrency == {"no-flow-control": 400, "flow-control": 14}
    assert f.peak_delivery_concurrency == {"flow-control": 10}
    assert f.courier_429 == {"no-flow-control": 16000, "flow-control": 0}
    assert f.lowest_delivery_success == {"no-flow-control": 0.3, "flow-control": 0.99}
    assert f.source == "Prometheus"
    assert overlay.pick({"no-flow-control": None}) is None


def test_the_run_folder_names_its_turns_and_reads_them_back(tmp_path: Path):
    w = windows(tmp_path)
    for name, window in w.items():
        window.folder.mkdir()
        (window.folder / "phases.json").write_text(json.dumps({
            "run_id": window.run_id, "profile": "smoke", "started_at": window.start, "ended_at": window.end,
            "phases": [{"topology": name, "sent": 100, "failed": 0}]}))
    folder = combined_folder("smoke", w, reports=tmp_path, run_order=["in turns: needs 2.1 cores"])
    assert folder.name.endswith("-smoke-in-turns")
    whole = from_folder(folder)
    assert (whole.start, whole.end, whole.profile, whole.run_id) == (NFC_START, FC_END, "smoke", None)
    back = turns(folder)
    assert {n: (t.start, t.end, t.run_id) for n, t in back.items()} == {n: (t.start, t.end, t.run_id) for n, t in w.items()}
    assert [row["topology"] for row in json.loads((folder / "phases.json").read_text())["phases"]] == list(w)
    # why it ran in turns, for a report rebuilt later (`make report`)
    assert run_order(folder) == ["in turns: needs 2.1 cores"]
    # a run of both at once names no turns
    assert turns(w["no-flow-control"].folder) is None
    assert run_order(w["no-flow-control"].folder) == []


def test_the_experiment_takes_the_run_folder_the_load_names():
    # the line load/cli.py prints first: reports/ is shared, so the folder is read from it
    line = "load: profile smoke (5.3 min), flow-control; reports in /work/my lab/reports/20261203T175327Z-smoke-flow-control\n"
    assert _REPORTS_IN.match(line).group(1) == "/work/my lab/reports/20261203T175327Z-smoke-flow-control"
    assert _REPORTS_IN.match("[   5s/320s] phase 1/4 'warm up' target 2.00 req/s\n") is None


def test_the_report_says_the_topologies_ran_in_turns_and_why(tmp_path: Path):
    w = windows(tmp_path)
    data = ReportData(window=RunWindow(tmp_path / "x-smoke-in-turns", NFC_START, FC_END, "smoke", None, True),
                      results={}, starts={n: t.start for n, t in w.items()}, ends={n: t.end for n, t in w.items()},
                      run_order=["in turns: the smoke profile needs about 2.10 cores"])
    text = render(data)
    assert "## How the topologies ran" in text and "**In turns**" in text
    assert "| no-flow-control | 2027-01-15 08:00:00 UTC | 2027-01-15 08:05:20 UTC |" in text
    assert "- in turns: the smoke profile needs about 2.10 cores" in text
    side = render(ReportData(window=w["no-flow-control"], results={}, run_order=["side by side: fits"]))
    assert "**Side by side**" in side and "**In turns**" not in side
