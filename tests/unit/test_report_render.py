"""Report rendering from given data: tables, plots from given series, verdict, run windows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab_kernel import endpoints as ep
from report.aws_state import find_correlation_id
from report.capacity import CapacityInputs, Phase, Retry, preview
from report.collect import TopologyResult, percentiles
from report.figures import Figures, merge
from report.ledger import Evidence, build
from report.panels import Line, Panel, cumulate, plot
from report.prom import Series
from report.render import ReportData, render
from report.runs import RunError, RunWindow, from_folder, parse_time, resolve
from report.verdict import check, reproduced


def result(name: str, started: int, completed: int, dead: int, lost: int, duplicates: int = 0) -> TopologyResult:
    accepted = {f"{name}-{i}" for i in range(started)}
    order = sorted(accepted)
    delivered = set(order[:completed])
    dead_ids = set(order[completed : completed + dead])
    in_flight = set(order[completed + dead : started - lost])
    ledger = build(name, Evidence(frozenset(accepted), frozenset(delivered), frozenset(dead_ids), running=frozenset(in_flight)))
    return TopologyResult(
        name=name, account="1", started=set(accepted), accepted=set(accepted), completed=delivered,
        line_counts={"delivery COMPLETED": completed}, ledger=ledger,
        duplicates={cid: 2 for cid in order[:duplicates]}, courier_records=completed,
        latency=percentiles([float(i) for i in range(1, completed + 1)]), queues={},
        completed_in_load=set(order[: completed // 2]),  # half of them before the load ended
    )


def window(tmp_path: Path) -> RunWindow:
    return RunWindow(tmp_path / "20261123T070000Z-smoke-both", 1_800_000_000.0, 1_800_000_180.0, "smoke", "run1", True)


def test_percentiles_are_nearest_rank():
    p = percentiles([float(i) for i in range(1, 101)])
    assert (p.p50, p.p95, p.p99, p.max, p.count) == (50.0, 95.0, 99.0, 100.0, 100)
    assert percentiles([]).p50 is None


def test_render_tables_from_given_results(tmp_path: Path):
    nfc = result("no-flow-control", 100, 20, 30, 10, duplicates=4)
    fc = result("flow-control", 100, 99, 0, 0)
    figures = Figures(
        peak_account_concurrency={"no-flow-control": 400, "flow-control": 14},
        peak_delivery_concurrency={"no-flow-control": 390, "flow-control": 10},
        account_limit={"no-flow-control": 400, "flow-control": 400},
        lambda_throttles={"no-flow-control": 55, "flow-control": 0},
        source="test",
    )
    data = ReportData(window=window(tmp_path), results={"no-flow-control": nfc, "flow-control": fc}, figures=figures,
                      plots=[("Concurrency", "plots/concurrency.png")], config={"profile": "smoke"},
                      offered={"no-flow-control": 200})
    data.criteria = check(data.results, figures, 400, 10)
    text = render(data)
    # the article's success rate, then what the load sent: 20 delivered of 200 sent
    # the article's success rate when the load ended and after the drain, then what the load sent
    assert "| no-flow-control | 100 | 20 | 10.0% | 20.0% | 200 | 10.0% |" in text
    assert "| flow-control | 100 | 99 | 49.0% | 99.0% | n/a | n/a |" in text
    assert "| no-flow-control | 100 | 20 (20.0%) | 30 (30.0%) | 40 (40.0%) | 10 (10.0%) | yes | yes |" in text
    assert "| no-flow-control | 20 | 4 | 4 | 2 |" in text  # duplicates
    assert "| flow-control | 99 | 50.00 | 95.00 | 99.00 | 99.00 |" in text  # latency
    assert "![Concurrency](plots/concurrency.png)" in text
    # flow-control delivered 99% but one order is still in flight: not "after the drain"
    assert "## Verdict: the article is NOT reproduced" in text
    assert "lost e.g. `no-flow-control-" in text


def test_verdict_criteria():
    nfc = result("no-flow-control", 100, 20, 30, 50, duplicates=2)
    fc = result("flow-control", 100, 100, 0, 0)
    good = Figures(peak_account_concurrency={"no-flow-control": 400}, peak_delivery_concurrency={"flow-control": 10},
                   account_limit={"no-flow-control": 400}, lambda_throttles={"no-flow-control": 3},
                   courier_429={"no-flow-control": 500, "flow-control": 1}, courier_calls={"flow-control": 200},
                   lowest_delivery_success={"no-flow-control": 0.3, "flow-control": 0.97})
    both = {"no-flow-control": nfc, "flow-control": fc}
    criteria = check(both, good, 400, 10, "smoke")
    assert reproduced(criteria), [c for c in criteria if not c.ok]
    assert {c.source for c in criteria} == {"platform metric", "ledger"}
    for change in (
        {"lambda_throttles": {"no-flow-control": 0}},
        {"courier_429": {"no-flow-control": 0, "flow-control": 1}},
        {"lowest_delivery_success": {"no-flow-control": 0.5, "flow-control": 0.97}},  # 50% is no collapse
        {"peak_account_concurrency": {"no-flow-control": 99}},  # under 10 x flow-control's 10
        {"peak_delivery_concurrency": {"flow-control": 11}},
        {"courier_429": {"no-flow-control": 500, "flow-control": 3}},  # 1.5% of flow-control's calls
        {"lowest_delivery_success": {"no-flow-control": 0.3, "flow-control": 0.94}},
    ):
        bad = Figures(**{**good.__dict__, **change})
        assert not reproduced(check(both, bad, 400, 10, "smoke")), change
    quiet_nfc = result("no-flow-control", 100, 100, 0, 0)  # nothing duplicated, nothing dead-lettered
    assert not reproduced(check({"no-flow-control": quiet_nfc, "flow-control": fc}, good, 400, 10, "smoke"))
    lossy_fc = result("flow-control", 100, 99, 0, 1)
    assert not reproduced(check({"no-flow-control": nfc, "flow-control": lossy_fc}, good, 400, 10, "smoke"))
    assert not reproduced(check({"flow-control": fc}, good, 400, 10, "smoke"))
    # the seed profile also judges loss and the account limit
    seed = check(both, good, 400, 10, "seed")
    assert reproduced(seed) and len(seed) == len(criteria) + 2
    below_limit = Figures(**{**good.__dict__, "peak_account_concurrency": {"no-flow-control": 399}})
    assert reproduced(check(both, below_limit, 400, 10, "smoke"))
    assert not reproduced(check(both, below_limit, 400, 10, "seed"))
    no_dead = {"no-flow-control": result("no-flow-control", 100, 70, 0, 30, duplicates=2), "flow-control": fc}
    assert reproduced(check(no_dead, good, 400, 10, "smoke")) and not reproduced(check(no_dead, good, 400, 10, "seed"))


def test_verdict_shows_the_prediction_beside_each_criterion(tmp_path: Path):
    from report.verdict import Criterion, beside

    measured = [Criterion("no-flow-control", "Lambda throttles > 0", "0", False, "platform metric")]
    predicted = [Criterion("no-flow-control", "Lambda throttles > 0", "673", True, "simulation")]
    (c,) = beside(measured, predicted)
    assert (c.predicted, c.predicted_ok, c.ok, c.source) == ("673", True, False, "platform metric")
    data = ReportData(window=window(tmp_path), results={}, criteria=[c])
    text = render(data)
    assert "| topology | criterion | predicted (simulation) | measured | source | holds |" in text
    assert "| no-flow-control | Lambda throttles > 0 | 673 (holds) | 0 | platform metric | **no** |" in text


def test_plot_writes_a_png_from_given_series(tmp_path: Path):
    panel = Panel("c", "Concurrency", "n", (Line("q", "{topology} account"), Line("q2", "{topology} limit", "--")))
    data = [
        (panel.lines[0], [Series({"topology": "no-flow-control"}, [(100.0, 1.0), (160.0, 50.0)]),
                          Series({"topology": "flow-control"}, [(100.0, 1.0), (160.0, 10.0)])]),
        (panel.lines[1], [Series({"topology": "no-flow-control"}, [(100.0, 400.0), (160.0, 400.0)])]),
    ]
    path = tmp_path / "plots" / "c.png"
    assert plot(panel, data, 100.0, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plot(panel, [(panel.lines[0], [Series({}, [])])], 0, tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_cumulate_counts_from_the_start_and_survives_a_reset():
    inside = cumulate(Series({}, [(130.0, 3.0), (135.0, 5.0)]), start=100.0, step=5.0)
    assert [v for _, v in inside.points] == [3.0, 5.0]  # born inside the range: from 0
    before = cumulate(Series({}, [(100.0, 10.0), (105.0, 12.0), (110.0, 1.0)]), start=100.0, step=5.0)
    assert [v for _, v in before.points] == [0.0, 2.0, 3.0]


def test_merge_prefers_prometheus_counters_and_the_larger_peak():
    a = Figures(peak_account_concurrency={"x": 10}, lambda_throttles={"x": 5}, source="p")
    b = Figures(peak_account_concurrency={"x": 12, "y": 1}, lambda_throttles={"x": 7, "y": 2}, source="s")
    m = merge(a, b)
    assert m.peak_account_concurrency == {"x": 12, "y": 1}
    assert m.lambda_throttles == {"x": 5, "y": 2}
    assert merge(None, b) is b


def test_merge_keeps_every_figure_of_the_prometheus_side():
    # the sampler has no per-minute success; merging it in must not drop Prometheus' figure
    a = Figures(lowest_delivery_success={"x": 0.3}, throttles_by_function={"x": {"f": 1.0}}, source="p")
    b = Figures(peak_account_concurrency={"x": 12}, source="s")
    m = merge(a, b)
    assert m.lowest_delivery_success == {"x": 0.3}
    assert m.throttles_by_function == {"x": {"f": 1.0}}
    assert merge(a, Figures(lowest_delivery_success={"x": 0.2, "y": 0.9})).lowest_delivery_success == {"x": 0.2, "y": 0.9}


def test_correlation_id_found_in_queue_bodies():
    event = {"detail-type": "notify-order", "detail": {"order_id": "o1", "meta_data": {"correlation_id": "cid-1"}}}
    assert find_correlation_id(json.dumps(event)) == "cid-1"
    on_failure = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event, "responsePayload": None}
    assert find_correlation_id(json.dumps(on_failure)) == "cid-1"
    assert find_correlation_id("not json") is None


def test_endpoints_contract_and_errors(tmp_path: Path):
    with pytest.raises(ep.LabNotUp, match="run `make up` first"):
        ep.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ep.LabNotUp, match="not JSON"):
        ep.load(bad)
    good = tmp_path / "endpoints.json"
    good.write_text(json.dumps({
        "localstack_url": "http://127.0.0.1:4566/", "prometheus_url": "http://127.0.0.1:9090",
        "topologies": {"flow-control": {
            "account": "222222222222", "region": "us-east-1",
            "courier_url": "http://127.0.0.1:4566/_aws/execute-api/abc123/prod/slow",
            "queues": {"delivery": "http://x/222222222222/delivery-queue", "dlq": "http://x/222222222222/dlq"},
        }},
    }))
    e = ep.load(good)
    t = e.topology("flow-control")
    assert e.localstack_url == "http://127.0.0.1:4566"
    assert t.courier_api_id == "abc123"
    assert t.log_group("delivery") == "/aws/lambda/DeliveryFunction"
    assert t.queue_name("delivery") == "delivery-queue"
    with pytest.raises(ep.LabNotUp, match="not in"):
        e.topology("no-flow-control")


def test_run_windows(tmp_path: Path):
    now = 1_800_000_000.0
    assert parse_time("-20m", now) == now - 1200
    # naive ISO is UTC, like the Z form
    assert parse_time("2026-11-23T07:00:00") == parse_time("2026-11-23T07:00:00Z") == 1_795_417_200.0
    assert parse_time("1800000000") == now
    with pytest.raises(RunError, match="not a time"):
        parse_time("yesterday")
    folder = tmp_path / "20261123T070000Z-smoke-both"
    folder.mkdir()
    running = from_folder(folder, now)
    assert (running.profile, running.finished, running.end) == ("smoke", False, now)
    (folder / "phases.json").write_text(json.dumps({"run_id": "r1", "profile": "smoke", "started_at": 100.0, "ended_at": 280.0}))
    done = resolve(reports=tmp_path, now=now)
    assert (done.folder, done.start, done.end, done.run_id, done.finished) == (folder, 100.0, 280.0, "r1", True)
    ranged = resolve(start="-10m", end="-5m", profile="seed", reports=tmp_path, now=now)
    assert (ranged.start, ranged.end, ranged.profile) == (now - 600, now - 300, "seed")
    with pytest.raises(RunError, match="after"):
        resolve(start="-5m", end="-10m", reports=tmp_path, now=now)
    with pytest.raises(RunError, match="make load"):
        resolve(reports=tmp_path / "none", now=now)


def test_preview_in_the_report(tmp_path: Path):
    prev = preview(CapacityInputs("smoke", (Phase("p", 60, 15, 15),), 29, Retry(5, 3, 0, 5), 10, 10, 0.2, 0, 2, 400, 2, 10))
    data = ReportData(window=window(tmp_path), results={"no-flow-control": result("no-flow-control", 10, 2, 8, 0)}, preview=prev)
    text = render(data)
    assert "## Measured vs simulated" in text
    assert "| quantity | steady state | simulated: seed 1 (range over seeds) | measured | measured / simulated | within |" in text
    # a 60 s overload: retries land after it; 8 measured vs 0 simulated is within 25 orders
    assert "| no-flow-control dead-lettered | - | 0 | 8 | - | yes (+-25) |" in text
    assert "| no-flow-control actual success |" in text and "| 20.0% |" in text
    assert "### Capacity preview" in text and "32 s" in text


def test_headline_plot_puts_panels_side_by_side(tmp_path: Path):
    from report.panels import plot_headline

    a = Panel("a", "A", "n", (Line("q", "{topology}"),))
    b = Panel("b", "B", "n", (Line("q", "{topology}"),))
    series = [Series({"topology": "flow-control"}, [(0.0, 1.0), (60.0, 2.0)])]
    path = tmp_path / "headline.png"
    assert plot_headline([(a, [(a.lines[0], series)]), (b, [(b.lines[0], [])])], 0.0, path)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert not plot_headline([(b, [(b.lines[0], [])])], 0.0, tmp_path / "none.png")


def test_missing_scrapes_break_the_line():
    import math

    from report.panels import with_gaps

    points = [(0.0, 1.0), (5.0, 2.0), (10.0, 3.0), (100.0, 4.0), (105.0, 5.0)]
    xs, ys = with_gaps(points, 0.0)
    assert len(xs) == 6 and math.isnan(xs[3]) and math.isnan(ys[3])
    assert xs[4] == 100 / 60 and ys[4] == 4.0
    assert with_gaps(points[:3], 0.0)[1] == [1.0, 2.0, 3.0]


def test_throttles_by_function_table(tmp_path: Path):
    f = Figures(throttles_by_function={"no-flow-control": {"DeliveryFunction": 40, "NotificationFunction": 7}})
    data = ReportData(window=window(tmp_path), results={"no-flow-control": result("no-flow-control", 10, 5, 5, 0)}, figures=f)
    text = render(data)
    assert "| topology | DeliveryFunction | NotificationFunction |" in text
    assert "| no-flow-control | 40 | 7 |" in text
    assert "throttles by function" not in render(ReportData(window=window(tmp_path), results={}, figures=Figures()))


def test_orders_panel_counts_each_order_once_at_its_first_time():
    from report.panels import cumulative_count, orders_from_logs

    assert cumulative_count([10.0, 12.0, 12.0, 30.0], start=10.0, end=30.0, step=10.0) == [(10.0, 1.0), (20.0, 3.0), (30.0, 4.0)]
    data = orders_from_logs({"no-flow-control": ([1.0, 2.0], [5.0])}, start=0.0, end=10.0, step=5.0)
    (accepted_line, accepted), (delivered_line, delivered) = data
    assert accepted_line.label.startswith("{topology}") and accepted[0].labels == {"topology": "no-flow-control"}
    assert accepted[0].points[-1] == (10.0, 2.0) and delivered[0].points == [(0.0, 0.0), (5.0, 1.0), (10.0, 1.0)]


def test_fidelity_bounds():
    from report.fidelity import Comparison, outside

    assert Comparison("x", 9244, 59211).faithful is False  # the throttles of the old seed run: 6.4x
    assert Comparison("x", 1000, 1240).faithful and not Comparison("x", 1000, 1260).faithful
    assert Comparison("x", 4, 29).faithful and not Comparison("x", 4, 30).faithful  # few: +-25
    assert Comparison("x", 0.168, 0.20, share=True).faithful is True
    assert Comparison("x", 0.168, 0.298, share=True).faithful is False
    assert Comparison("x", None, 3).faithful is None and Comparison("x", 0, 0).ratio is None
    assert [c.quantity for c in outside([Comparison("a", 100, 200), Comparison("b", 100, 110)])] == ["a"]
    # with several seeds, the bound applies to their range: 102 dead letters vs 70 (seeds: 52-114)
    assert not Comparison("x", 70, 102).faithful and Comparison("x", 70, 102, low=52, high=114).faithful
    assert Comparison("x", 1000, 1700, low=900, high=1300).faithful is False  # 1.31x the highest seed
    assert Comparison("x", 1000, 1600, low=900, high=1300).faithful is True


def test_series_of_accounts_that_are_no_topology_are_not_plotted():
    from report.panels import fetch

    class FakeProm:
        def range(self, query, start, end, step):
            return [Series({"topology": "no-flow-control"}, [(0.0, 1.0)]), Series({}, [(0.0, 5.0)])]

    panel = Panel("c", "Concurrency", "n", (Line("q", "{topology} account"),))
    ((_, series),) = fetch(FakeProm(), panel, 0.0, 60.0, 5.0)
    assert [s.labels for s in series] == [{"topology": "no-flow-control"}]  # the probe account's is dropped


SHORT_PROFILE = CapacityInputs("smoke", (Phase("p", 60, 15, 15),), 29, Retry(5, 3, 0, 5), 10, 10, 0.2, 0, 2, 400, 2, 10)


def test_by_default_the_report_compares_the_pair_as_the_article_does(tmp_path: Path, monkeypatch):
    from lab_kernel.topologies import catalogue
    from report.render import comparisons

    monkeypatch.delenv("TOPOLOGIES", raising=False)
    prev = preview(SHORT_PROFILE)
    storm, remedy = catalogue().pair
    quantities = [cmp.quantity for cmp, _ in comparisons(ReportData(window=window(tmp_path), results={}), prev)]
    assert [q.split(" ", 1)[0] for q in quantities] == [storm] * 8 + [remedy] * 4
    assert f"{storm} peak account concurrency" in quantities and f"{remedy} peak delivery concurrency" in quantities


def test_every_chosen_topology_has_its_rows_and_its_column(tmp_path: Path, monkeypatch):
    from lab_kernel.topologies import catalogue

    cat = catalogue()
    monkeypatch.setenv("TOPOLOGIES", "all")
    prev = preview(SHORT_PROFILE)
    assert tuple(prev.simulation.topologies) == cat.names
    results = {n: result(n, 10, 10 - i, i, 0) for i, n in enumerate(cat.names)}
    figures = Figures(peak_account_concurrency={n: 100.0 + i for i, n in enumerate(cat.names)})
    text = render(ReportData(window=window(tmp_path), results=results, figures=figures, preview=prev))
    assert "| no-flow-control dead-lettered | - |" in text  # the pair's rows as before
    for i, name in enumerate(cat.names):
        if name not in cat.pair:
            assert f"| {name} peak delivery concurrency | - |" in text
            assert f"| {name} dead-lettered | - |" in text
            # the capacity preview's simulated run, with the topology's own account limit
            (line,) = [line for line in text.splitlines() if line.startswith(f"    {name}: ")]
            assert f" of {cat.get(name).account_limit(400)} (delivery " in line
    assert "|  | " + " | ".join(cat.names) + " |" in text  # one column per topology, in the catalogue's order
    assert "| peak account concurrency | " + " | ".join(f"{100 + i}" for i in range(len(cat.names))) + " |" in text
    assert "| dead-lettered | 0 (0.0%) | 1 (10.0%) |" in text


def test_the_verdict_headline_tells_the_article_from_the_fixes(tmp_path: Path):
    from dataclasses import replace

    from lab_kernel.topologies import catalogue
    from report.verdict import Criterion

    cat = catalogue()
    storm = Criterion(cat.storm, "courier 429s > 0", "5", True)
    fix = next(n for n in cat.names if n not in cat.pair)
    held, broken = Criterion(fix, "a", "1", True), Criterion(fix, "b", "2", False)

    def headline(criteria):
        text = render(ReportData(window=window(tmp_path), results={}, criteria=criteria))
        return next(line for line in text.splitlines() if line.startswith("## Verdict"))

    assert headline([storm]) == "## Verdict: the article is REPRODUCED"
    assert headline([storm, held]) == "## Verdict: the article is REPRODUCED; the fixes behave as their entries expect (1 of 1)"
    assert headline([storm, held, broken]) == ("## Verdict: the article is REPRODUCED; the fixes do **not** all behave "
                                               "as their entries expect (1 of 2)")
    assert headline([replace(storm, ok=False), held]).startswith("## Verdict: the article is NOT reproduced; the fixes behave")
