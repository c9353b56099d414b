"""A counter's growth over a run, read from Prometheus points, through a LocalStack restart."""

from __future__ import annotations

from report.prom import Series

START, STEP = 1000.0, 5.0


def series(*values: float, first_at: float = START) -> Series:
    return Series({"topology": "no-flow-control"}, [(first_at + i * STEP, v) for i, v in enumerate(values)])


def test_growth_from_the_value_at_the_start():
    assert series(100, 110, 130).counted(START, STEP) == 30


def test_a_restarted_localstack_counts_from_zero_past_the_old_processes_last_value():
    # 17,907: the previous run's process, still answered at the window's start; then 8, 128, ...
    assert series(17907, 8, 128, 19189).counted(START, STEP) == 19189


def test_a_series_created_during_the_run_counts_from_zero():
    assert series(3, 10, first_at=START + 60).counted(START, STEP) == 10


def test_no_points_no_counts():
    assert Series({}, []).counted(START, STEP) == 0
