"""The catalogue's fixes judged on their own expectations (issue #17): each entry of
lab_kernel/topologies.toml beyond the article's pair says in `[topology.expect]` what the verdict
should find, the simulation predicts it first, and a measured run is judged the same way."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lab_kernel.topologies import (
    ASYNC_INVOKE,
    MEASURES,
    SCHEMA_FILE,
    CatalogueError,
    Expectations,
    FunctionSettings,
    Topology,
    catalogue,
    parse,
)
from report.config_sources import load_phases
from report.simulate import simulate
from report.verdict import MEASURE_LABELS, NFC, Outcome, _expected, check, expectations, predict, reproduced
from tests.unit.test_report_render import result
from tests.unit.test_simulate import SEED_PHASES, inputs
from tests.unit.test_lab_kernel import _with


def outcome(name: str, **figures) -> Outcome:
    return Outcome(topology=name, accepted=100, dead_lettered=0, lost=0, delivered_share=1.0, **figures)


def fix(**expect) -> Topology:
    """A fix of the test's own, capped at 10, judged on `expect`."""
    return Topology(name="under-test", account="123456789012", wiring=ASYNC_INVOKE,
                    delivery=FunctionSettings(10, False), expect=Expectations(**expect))


def test_the_verdict_and_the_schema_know_the_same_measures():
    schema = json.loads(SCHEMA_FILE.read_text())
    assert set(MEASURE_LABELS) == set(MEASURES) == set(schema["$defs"]["measures"]["items"]["enum"])
    assert set(MEASURES) <= set(Outcome.__dataclass_fields__)


def test_every_fix_of_the_catalogue_states_an_expectation():
    cat = catalogue()
    fixes = [t for t in cat.topologies if t.name not in cat.pair]
    assert fixes and all(t.expect for t in fixes)


@pytest.mark.parametrize("profile", ["seed", "smoke"])
def test_the_simulation_predicts_every_fix_meets_its_expectations(profile):
    phases = SEED_PHASES if profile == "seed" else load_phases("smoke")
    cat = catalogue()
    for seed in (1, 2):
        criteria = predict(simulate(inputs(phases=phases), seed, cat.names), 400, 10, profile)
        for t in cat.topologies:
            if t.name in cat.pair:
                continue
            mine = [c for c in criteria if c.topology == t.name]
            stated = int(t.expect.delivery_within_reservation) + len(t.expect.at_least_the_storm) + len(t.expect.at_most_the_storm)
            assert len(mine) == stated
            assert reproduced(mine), (profile, seed, [c for c in mine if not c.ok])


def test_a_reservation_exceeded_fails_its_criterion():
    entry = fix(delivery_within_reservation=True)
    (held,) = _expected(outcome(entry.name, peak_delivery_concurrency=10), None, entry)
    (broken,) = _expected(outcome(entry.name, peak_delivery_concurrency=11), None, entry)
    assert held.ok and not broken.ok and "reservation (10)" in broken.name
    (unmeasured,) = _expected(outcome(entry.name), None, entry)
    assert not unmeasured.ok


def test_figures_are_compared_with_the_storms_of_the_same_run():
    entry = fix(at_least_the_storm=("peak_account_concurrency",), at_most_the_storm=("courier_429s",))
    storm = outcome(NFC, peak_account_concurrency=400, courier_429s=5000)
    ok = _expected(outcome(entry.name, peak_account_concurrency=400, courier_429s=5000), storm, entry)
    assert [c.ok for c in ok] == [True, True]  # equal holds both ways
    worse = _expected(outcome(entry.name, peak_account_concurrency=399, courier_429s=5001), storm, entry)
    assert [c.ok for c in worse] == [False, False]
    assert worse[1].measured == "5001 vs 5000" and worse[1].name == f"courier 429s <= {NFC}'s"
    alone = _expected(outcome(entry.name, peak_account_concurrency=900, courier_429s=0), None, entry)
    assert not any(c.ok for c in alone) and f"{NFC} not run" in alone[0].measured


def test_a_fix_that_states_nothing_is_not_judged_held():
    entry = replace(fix(), expect=Expectations())
    (c,) = _expected(outcome(entry.name), outcome(NFC), entry)
    assert not c.ok and "topologies.toml" in c.name


def test_the_pair_is_judged_on_the_article_alone():
    cat = catalogue()
    assert expectations({name: outcome(name) for name in cat.pair}, None) == []


def test_a_measured_fix_is_judged_beside_the_pair():
    cat = catalogue()
    capped = next(t for t in cat.topologies if t.expect.delivery_within_reservation)
    runs = {name: result(name, 100, 100, 0, 0) for name in (*cat.pair, capped.name)}
    peaks = {capped.name: capped.delivery.reserved_concurrency}
    judged = [c for c in check(runs, _figures(peaks), 400, 10, "smoke") if c.topology == capped.name]
    assert judged and judged[0].name.startswith("delivery concurrency <= its reservation") and judged[0].ok
    over = {capped.name: capped.delivery.reserved_concurrency + 1}
    assert not [c for c in check(runs, _figures(over), 400, 10, "smoke") if c.topology == capped.name][0].ok


def _figures(peak_delivery: dict[str, float]):
    from report.figures import Figures

    return Figures(peak_delivery_concurrency=peak_delivery)


def test_expecting_a_reservation_without_one_is_refused():
    def break_it(d: dict) -> None:
        d["topology"][0]["expect"] = {"delivery_within_reservation": True}
    with pytest.raises(CatalogueError, match="reserves none"):
        parse(_with(break_it))
    with pytest.raises(CatalogueError, match="expect"):
        parse(_with(lambda d: d["topology"][0].update(expect={"at_least_the_storm": ["happiness"]})))


EXTRA_FIX = """
[[topology]]
name = "reserved-five"
short = "r5"
title = "reserved concurrency 5"
colour = "#17becf"
account = "747474747474"
instance = "localstack"
port_setting = "LAB_LOCALSTACK_PORT"
wiring = "async-invoke"
account_limit_setting = "LAB_ACCOUNT_CONCURRENCY"
[topology.delivery]
reserved_concurrency = 5
breaker = false
[topology.expect]
delivery_within_reservation = true
at_most_the_storm = ["courier_429s"]
"""


def test_a_fix_added_in_a_fixture_is_simulated_judged_and_reported_with_no_code_change(tmp_path, monkeypatch):
    from lab_kernel import topologies
    from report.capacity import preview
    from report.render import ReportData, render
    from tests.unit.test_report_render import window

    extended = tmp_path / "topologies.toml"
    extended.write_text(topologies.CATALOGUE_FILE.read_text() + EXTRA_FIX)
    monkeypatch.setenv("LAB_TOPOLOGIES_FILE", str(extended))
    monkeypatch.setenv("TOPOLOGIES", "reserved-five")
    topologies.load.cache_clear()
    try:
        profile = inputs(phases=load_phases("smoke"))
        sim = simulate(profile)
        assert tuple(sim.topologies) == (*catalogue().pair, "reserved-five")
        assert sim["reserved-five"].peak_delivery_concurrency == 5
        mine = [c for c in predict(sim, 400, 10, "smoke") if c.topology == "reserved-five"]
        assert [c.name for c in mine] == ["delivery concurrency <= its reservation (5)", f"courier 429s <= {NFC}'s"]
        assert reproduced(mine)
        text = render(ReportData(window=window(tmp_path), results={}, preview=preview(profile)))
        assert "| reserved-five peak delivery concurrency | - | 5 " in text
    finally:
        topologies.load.cache_clear()
