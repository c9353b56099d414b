"""The overhead probe's figures: per minute of the load, against its idle p50 (report.overhead)."""

from __future__ import annotations

from pathlib import Path

from report.overhead import Overhead, Sample, summarise
from report.render import ReportData, render
from report.runs import RunWindow


def samples(start: float, seconds: int, invoke: float, api: float) -> list[Sample]:
    return [Sample(start + i * 0.5, invoke, api) for i in range(seconds * 2)]


def test_per_minute_figures_against_idle():
    idle = samples(0, 10, 0.006, 0.009)
    load = samples(100, 60, 0.007, 0.010) + samples(160, 60, 0.020, 0.012)
    o = summarise(idle, load, load_start=100)
    assert (o.idle_invoke_p50, o.idle_api_p50) == (0.006, 0.009)
    assert [m.minute for m in o.minutes] == [0, 1] and o.minutes[0].samples == 120
    assert o.worst().minute == 1  # 3.3x idle in minute 1
    assert o.within_bounds() is False
    calm = summarise(idle, samples(100, 120, 0.011, 0.017), 100)
    assert calm.within_bounds() is True  # 1.8x and 1.9x idle, p95 well under 500 ms


def test_a_slow_p95_or_a_failed_probe_breaks_the_bound():
    idle = samples(0, 10, 0.006, 0.009)
    slow_tail = samples(100, 56, 0.006, 0.009) + samples(156, 4, 0.6, 0.009)  # over 5% of a minute at 600 ms
    assert summarise(idle, slow_tail, 100).within_bounds() is False
    failed = samples(100, 60, 0.006, 0.009) + [Sample(161, None, 0.009)]
    o = summarise(idle, failed, 100)
    assert o.failed == 1 and o.within_bounds() is False
    assert summarise([Sample(0, None, None)], failed, 100) is None  # no idle figure: nothing to compare


def test_the_report_shows_the_probe(tmp_path: Path):
    o = summarise(samples(0, 10, 0.006, 0.009), samples(100, 60, 0.007, 0.010), 100)
    window = RunWindow(tmp_path / "run", 100, 160, "smoke", "r1", True)
    text = render(ReportData(window=window, results={}, overhead=o))
    assert "## Emulator overhead beside the storm" in text and "The emulator kept up." in text
    assert "| 0 | 120 | 7.0 ms | 7.0 ms | 1.2 | 10.0 ms | 10.0 ms | 1.1 |" in text
    assert "Emulator overhead" not in render(ReportData(window=window, results={}, overhead=Overhead(0.006, 0.009, (), 0)))


def test_a_minute_with_a_few_probes_is_not_judged():
    idle = samples(0, 10, 0.006, 0.009)
    edge = samples(100, 60, 0.006, 0.009) + samples(160, 3, 1.2, 0.02)  # the load's last seconds
    o = summarise(idle, edge, 100)
    assert [m.minute for m in o.minutes] == [0] and o.within_bounds() is True
