"""Topologies that ran in turns, overlaid on the time since each one's own load started.

Side by side, both loads start together and one clock serves both. In turns (`report.run_order`)
the remedy's load starts after the storm's has drained; the report compares them
as if they had started together: each topology's times are moved back by how much later its own
load started than the first one's, so minute 3 is minute 3 of each load.

Each topology is measured over its own turn: from its load's start until the next turn's load
starts (the drain included), the last one until now. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

from report.figures import Figures
from report.prom import Series
from report.runs import RunWindow


def reference(windows: Mapping[str, RunWindow]) -> float:
    """The clock the report is drawn on: the first turn's load start."""
    return min(w.start for w in windows.values())


def offsets(windows: Mapping[str, RunWindow]) -> dict[str, float]:
    """Seconds to take off each topology's timestamps so its load starts at the reference."""
    ref = reference(windows)
    return {name: w.start - ref for name, w in windows.items()}


def observed_until(windows: Mapping[str, RunWindow], now: float) -> dict[str, float]:
    """Each turn's end of observation: the next turn's load start, or `now` for the last turn."""
    ordered = sorted(windows.items(), key=lambda item: item[1].start)
    out: dict[str, float] = {}
    for (name, window), following in zip(ordered, [*ordered[1:], None], strict=True):
        out[name] = following[1].start if following is not None else max(now, window.end)
    return out


def shift(series: Series, offset: float) -> Series:
    return Series(series.labels, [(t - offset, v) for t, v in series.points])


def shift_times(times: list[float], offset: float) -> list[float]:
    return [t - offset for t in times]


def own_series(series: list[Series], topology: str, offset: float) -> list[Series]:
    """The series of `topology` alone (a query over its turn also returns the idle other one's),
    moved onto the reference clock."""
    return [shift(s, offset) for s in series if s.labels.get("topology") == topology]


def pick(per_topology: Mapping[str, Figures | None]) -> Figures | None:
    """One Figures from several, each topology's entries taken from the Figures of its own turn."""
    present = {name: f for name, f in per_topology.items() if f is not None}
    if not present:
        return None
    out = Figures(source="; ".join(dict.fromkeys(f.source for f in present.values())))
    for field in fields(Figures):
        if field.name == "source":
            continue
        merged = {}
        for name, figures in present.items():
            value = getattr(figures, field.name).get(name)
            if value is not None:
                merged[name] = value
        setattr(out, field.name, merged)
    return out
