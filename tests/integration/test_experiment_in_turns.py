"""`python -m report experiment` in turns, for real: the measured check, then each topology alone
(its load through real Locust, its drain), then one report overlaying both.

Both topologies are provisioned by the real bootstrap on a LocalStack of the test's own, with a
Prometheus scraping it; the load profile is a few seconds below the courier's limit (a file of the
test's own, `LAB_PROFILES_FILE`), so each turn drains in about a minute. The verdict does not
matter here (such a gentle load reproduces no storm): the order of the turns, each topology's
orders counted in its own turn only, and the report saying so do. About 5 minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab_kernel.settings import REPO_ROOT
from report.calibrate import machine_cores
from tests.support.localstack import free_port
from tests.support.provisioned import provisioned_lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROFILE = "turns-test"
PROFILES = f"""
[profiles.{PROFILE}]
description = "a few seconds below the courier's limit, for the in-turns test"
phases = [{{ name = "steady", duration = 15, rate = 3 }}]
"""


@pytest.fixture(scope="module")
def lab(localstack, tmp_path_factory):
    folder = tmp_path_factory.mktemp("turns-lab")
    with provisioned_lab(localstack.url, folder) as (endpoints, endpoints_file):
        yield endpoints, endpoints_file, folder


def experiment(lab, order: str) -> str:
    """`python -m report experiment` on the test's lab with its short profile; its output."""
    _endpoints, endpoints_file, folder = lab
    profiles = folder / "profiles.toml"
    profiles.write_text(PROFILES)
    env = {
        **os.environ,
        "LAB_PROFILES_FILE": str(profiles),
        # the load records its Locust process in a state folder of the test's own, and serves its
        # metrics on a free port: a lab running on this machine is not touched
        "LAB_STATE_DIR": str(folder / "state"),
        "LAB_LOCUST_METRICS_PORT": str(free_port()),
    }
    run = subprocess.run(
        [sys.executable, "-m", "report", "--endpoints", str(endpoints_file), "experiment", "--profile", PROFILE,
         "--order", order, "--quiet", "20", "--drain-timeout", "240"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=840, stdin=subprocess.DEVNULL,
    )
    out = run.stdout + run.stderr
    print("\n".join(l for l in out.splitlines() if l.startswith("experiment: ")))  # the check's figures
    # a verdict either way (this gentle load reproduces no storm); 2 would be "could not run"
    assert run.returncode in (0, 1), out[-3000:]
    return out


def written_by(out: str) -> tuple[Path, list[Path]]:
    """The report the experiment wrote, and every run folder it made under reports/."""
    report = Path(re.search(r"report: (\S+/report\.md)", out).group(1))
    report = report if report.is_absolute() else REPO_ROOT / report
    phases = json.loads((report.parent / "phases.json").read_text())
    return report, [report.parent, *(report.parent.parent / own for own in (phases.get("turns") or {}).values())]


@pytest.mark.timeout(900)
def test_experiment_in_turns_runs_each_topology_alone_and_overlays_them(lab):
    out = experiment(lab, "in-turns")

    # the check was measured on this machine and printed with its figures, then overridden
    line = next(l for l in out.splitlines() if l.startswith("experiment: run order: "))
    assert line.startswith("experiment: run order: in turns (EXPERIMENT_ORDER=in-turns")
    per_invocation = float(re.search(r"measured (\d+\.\d) ms per Lambda invocation", line).group(1))
    per_refusal = float(re.search(r", (\d+\.\d) ms per refused request", line).group(1))
    assert per_invocation > 0 and per_refusal > 0
    assert f"this machine has {machine_cores():g} cores" in line
    assert "calibration failed" not in out

    # one topology after the other, each alone; never both at once
    loads = re.findall(r"experiment: load: -m load run --profile \S+ --topology (\S+)", out)
    assert loads == ["no-flow-control", "flow-control"], loads
    assert out.index("turn 1/2: no-flow-control alone") < out.index("turn 2/2: flow-control alone")
    assert out.count("draining") >= 2

    report, written = written_by(out)
    phases = json.loads((report.parent / "phases.json").read_text())
    try:
        text = report.read_text()
        summary = json.loads((report.parent / "report.json").read_text())
        turns = {name: json.loads((report.parent.parent / own / "phases.json").read_text())
                 for name, own in phases["turns"].items()}

        assert summary["order"] == "in-turns"
        # the second turn's load started after the first one's had ended (and drained)
        assert turns["no-flow-control"]["ended_at"] <= turns["flow-control"]["started_at"]
        assert summary["load_started"] == {n: t["started_at"] for n, t in turns.items()}
        # each topology's orders are its own turn's: every order its load sent, and none of the
        # calibration's (which went through no-flow-control before its turn)
        for name, turn in turns.items():
            sent = sum(row["sent"] for row in turn["phases"] if row["topology"] == name)
            assert sent > 0
            assert summary["topologies"][name]["accepted"] == sent, name
            assert summary["topologies"][name]["ledger"]["lost"] == 0
        assert "## How the topologies ran" in text and "**In turns**" in text
        assert "- in turns (EXPERIMENT_ORDER=in-turns" in text
        # both topologies' series drawn from Prometheus, on the time since each one's own load
        plots = sorted(p.name for p in (report.parent / "plots").glob("*.png"))
        assert "concurrency.png" in plots and "orders.png" in plots, plots
        # the verdict judged each topology on its own turn's figures
        assert re.search(r"\| flow-control \| delivery concurrency <= 10 \| [^|]+ \| peak [1-9]", text), text[:3000]
    finally:
        for own in written:  # the run folders this test's experiment wrote under reports/
            shutil.rmtree(own, ignore_errors=True)


@pytest.mark.timeout(900)
def test_experiment_side_by_side_when_asked_runs_both_at_once_on_one_clock(lab):
    out = experiment(lab, "side-by-side")
    line = next(l for l in out.splitlines() if l.startswith("experiment: run order: "))
    assert line.startswith("experiment: run order: side by side (EXPERIMENT_ORDER=side-by-side")
    assert re.search(r"measured \d+\.\d ms per Lambda invocation", line)
    loads = re.findall(r"experiment: load: -m load run --profile \S+ --topology (\S+)", out)
    assert loads == ["both"], loads
    assert "turn 1/2" not in out
    report, written = written_by(out)
    try:
        text = report.read_text()
        summary = json.loads((report.parent / "report.json").read_text())
        sent = json.loads((report.parent / "phases.json").read_text())["phases"]
        assert summary["order"] == "side-by-side" and "load_started" not in summary
        assert "**Side by side**" in text and "**In turns**" not in text
        for name in ("no-flow-control", "flow-control"):
            assert summary["topologies"][name]["accepted"] == sum(r["sent"] for r in sent if r["topology"] == name)
    finally:
        for own in written:
            shutil.rmtree(own, ignore_errors=True)
