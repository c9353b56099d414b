"""The courier call seen by the delivery function, from its log lines (report.courier_calls)."""

from __future__ import annotations

from report.courier_calls import courier_calls, per_minute, unloaded_success_p50, worst_slowdown
from report.logs import LogLine


def call(request: str, at: float, seconds: float, status: int) -> list[LogLine]:
    return [LogLine(int(at * 1000), "delivery", "delivery-handler", "c", None, "INFO", "trying API delivery attempt=1",
                    request_id=request),
            LogLine(int((at + seconds) * 1000), "delivery", "delivery-handler", "c", None, "INFO",
                    f"courier answered status_code={status}", request_id=request)]


def test_calls_per_minute_against_the_unloaded_success():
    lines = []
    for i in range(30):  # minute 0: unloaded, successes of 1 s
        lines += call(f"a{i}", 1000 + i, 1.0, 200)
    for i in range(30):  # minute 1: the storm, successes of 1.2 s and 429s of 10 ms
        lines += call(f"b{i}", 1060 + i, 1.2, 200) + call(f"c{i}", 1060 + i, 0.01, 429)
    lines += [LogLine(1_100_000, "delivery", "delivery-handler", "c", None, "WARNING", "delivery attempt failed",
                      request_id="b1")]  # not an answer: ignored
    calls = courier_calls(lines)
    assert len(calls) == 90 and {c.status for c in calls} == {200, 429}
    rows = per_minute(calls, 1000)
    assert [(r.minute, r.successes, r.throttled) for r in rows] == [(0, 30, 0), (1, 30, 30)]
    assert unloaded_success_p50(rows) == 1.0
    minute, ratio = worst_slowdown(rows)
    assert minute.minute == 1 and abs(ratio - 1.2) < 1e-9
    assert abs(rows[1].throttled_p50 - 0.01) < 1e-9


def test_calls_before_the_load_are_not_the_runs():
    # the experiment's calibration: its orders' deliveries meet its flood of 429s just before the load
    lines = call("calibration", 990, 0.01, 429)
    for i in range(30):
        lines += call(f"a{i}", 1000 + i, 1.0, 200)
    rows = per_minute(courier_calls(lines), 1000)
    assert [(r.minute, r.successes, r.throttled) for r in rows] == [(0, 30, 0)]
    assert unloaded_success_p50(rows) == 1.0


def test_no_unloaded_minute_no_ratio():
    rows = per_minute(courier_calls(call("x", 0, 0.01, 429)), 0)
    assert unloaded_success_p50(rows) is None and worst_slowdown(rows) is None


def test_the_report_shows_the_slowest_minute(tmp_path):
    from dataclasses import replace

    from report.render import ReportData, render
    from report.runs import RunWindow
    from tests.unit.test_report_render import result

    lines = []
    for i in range(30):
        lines += call(f"a{i}", 1000 + i, 1.0, 200) + call(f"b{i}", 1060 + i, 1.5, 200) + call(f"c{i}", 1060 + i, 0.02, 429)
    r = replace(result("no-flow-control", 10, 10, 0, 0), courier_calls=courier_calls(lines))
    text = render(ReportData(window=RunWindow(tmp_path / "run", 1000, 1180, "smoke", "r", True), results={"no-flow-control": r}))
    assert "## The courier call, as the delivery function saw it" in text
    assert "| no-flow-control | 90 | 1000 ms | 1500 ms (minute 1) | 1.50 | **no** | 20 / 20 ms (minute 1) |" in text
