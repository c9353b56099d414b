"""The chaos CLI's argument handling and the experiment file format (no lab needed)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from resilience.chaos import build_parser, mode_from_args, parse_duration, parse_match
from resilience.experiments_model import ExperimentError, load_experiment
from resilience.lab import LabError, load_lab

EXPERIMENTS = Path(__file__).resolve().parents[2] / "resilience" / "experiments"


def test_durations_and_match_rules_parse():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("5m") == timedelta(minutes=5)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    with pytest.raises(LabError, match="not understood"):
        parse_duration("soon")
    assert parse_match("body.customer~^vip") == {"path": "body.customer", "regex": "^vip"}
    assert parse_match("detail.qty=3") == {"path": "detail.qty", "equals": 3}
    assert parse_match("detail.kind=express") == {"path": "detail.kind", "equals": "express"}


def test_on_arguments_become_a_mode_entry_with_an_expiry():
    args = build_parser().parse_args(
        ["on", "--function", "delivery", "--mode", "latency", "--min-ms", "100", "--max-ms", "200",
         "--rate", "0.5", "--for", "5m", "--match", "body.x=1"])
    entry = mode_from_args(args)
    assert entry["min_ms"] == 100 and entry["max_ms"] == 200 and entry["rate"] == 0.5
    assert entry["match"] == [{"path": "body.x", "equals": 1}] and "expires_at" in entry


def test_function_roles_resolve_per_topology(tmp_path):
    lab = load_lab("http://127.0.0.1:1", path=tmp_path / "missing.json")
    flow = lab.select("flow-control")[0]
    assert flow.account == "222222222222" and lab.select("no-flow-control")[0].account == "111111111111"
    assert flow.function("courier") == "SlowApiFunction" and flow.function("delivery") == "DeliveryFunction"
    with pytest.raises(LabError, match="bad function"):
        flow.function("no spaces please")
    with pytest.raises(LabError, match="unknown topology"):
        lab.select("third")


def test_shipped_experiments_are_valid():
    files = sorted(EXPERIMENTS.glob("*.toml"))
    assert [f.stem for f in files] == ["delivery-rate-courier-failing", "order-api-latency"]
    latency = load_experiment(EXPERIMENTS / "order-api-latency.toml")
    assert latency.threshold == 0.4 and latency.comparison == "<"
    assert latency.conditions[0].document["faults"]["latency"] == {"rate": 1.0, "min_ms": 100, "max_ms": 200}
    assert latency.passes(0.39) and not latency.passes(0.41)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("duration='10s'\n[measure]\nquery='up'\nthreshold=1\n", "at least one [[condition]]"),
        ("duration='10s'\n[measure]\nthreshold=1\n", "needs a PromQL `query`"),
        ("duration='10s'\n[measure]\nquery='up'\nthreshold=1\ncomparison='~'\n", "comparison must be"),
        ("duration='5s'\nwarmup='9s'\n[measure]\nquery='up'\nthreshold=1\n[[condition]]\nfunction='x'\n"
         "[condition.faults.exception]\nrate=0.1\n", "warmup (9 s) must be shorter"),
        ("duration='10s'\n[measure]\nquery='up'\nthreshold=1\n[[condition]]\nfunction='x'\n"
         "[condition.faults.explode]\nrate=0.1\n", "unknown fault mode 'explode'"),
        ("not toml =", "cannot read TOML"),
    ],
)
def test_bad_experiments_are_refused(tmp_path, text, fragment):
    path = tmp_path / "e.toml"
    path.write_text(text)
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    assert fragment in str(info.value)
