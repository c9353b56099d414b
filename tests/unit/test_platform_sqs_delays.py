"""Delayed SQS messages released at their own due time (lab_platform/sqs_delays.py): the timer heap."""

from __future__ import annotations

import pytest

sqs_delays = pytest.importorskip("lab_platform.sqs_delays")


def test_callbacks_come_due_in_time_order_and_once():
    timers = sqs_delays.DelayTimers(clock=lambda: 0.0)
    fired: list[str] = []
    timers._thread = object()  # no thread: the test drives pop_due itself
    for when, name in ((3.0, "c"), (1.0, "a"), (2.0, "b"), (2.0, "b2")):
        timers.at(when, lambda name=name: fired.append(name))
    assert timers.next_due() == 1.0
    assert timers.pop_due(0.5) == []
    for callback in timers.pop_due(2.0):
        callback()
    assert fired == ["a", "b", "b2"]  # equal times keep their order of arrival
    assert timers.next_due() == 3.0
    for callback in timers.pop_due(10.0):
        callback()
    assert fired == ["a", "b", "b2", "c"]
    assert timers.pop_due(10.0) == [] and timers.next_due() is None
