"""The courier call as the delivery function saw it, minute by minute (issue #15, point 3).

Each attempt logs "trying API delivery" and then "courier answered status_code=N" (or an error);
the time between the two lines of one invocation is the call. On AWS the call's time does not
depend on the storm: a success takes the courier's own 0-2 s, a 429 is answered at API Gateway's
door. In the lab, a call slowed by the storm is the emulator's doing. The unloaded figure is the
success p50 in the minutes before the first 429; issue #15 holds every minute to 1.3x of it.
Pure: works on parsed log lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from report.logs import LogLine
from report.quantiles import nearest_rank

SLOWDOWN_CEILING = 1.3
_STATUS = re.compile(r"status_code=(\d{3})")


@dataclass(frozen=True)
class CourierCall:
    at: float  # unix seconds the attempt started
    status: int
    seconds: float


@dataclass(frozen=True)
class CallMinute:
    minute: int  # since the load started
    successes: int
    success_p50: float | None
    throttled: int
    throttled_p50: float | None
    throttled_p95: float | None


def courier_calls(lines: list[LogLine]) -> list[CourierCall]:
    """Every answered courier call in the delivery function's lines."""
    by_invocation: dict[str, list[LogLine]] = {}
    for line in lines:
        if line.role == "delivery" and line.request_id:
            by_invocation.setdefault(line.request_id, []).append(line)
    calls = []
    for own in by_invocation.values():
        own.sort(key=lambda line: line.timestamp_ms)
        for tried, answered in zip(own, own[1:], strict=False):
            if tried.message.startswith("trying API delivery") and answered.message.startswith("courier answered"):
                match = _STATUS.search(answered.message)
                if match:
                    calls.append(CourierCall(tried.timestamp_ms / 1000, int(match.group(1)),
                                             (answered.timestamp_ms - tried.timestamp_ms) / 1000))
    return sorted(calls, key=lambda c: c.at)


def per_minute(calls: list[CourierCall], load_start: float) -> list[CallMinute]:
    """The calls from the load's start on, by minute. Calls before it are not the run's: the
    experiment's calibration sends orders and then floods the courier with 429s just before the
    load, and a 429 there would leave the run no unloaded minute."""
    minutes: dict[int, list[CourierCall]] = {}
    for call in calls:
        if call.at < load_start:
            continue
        minutes.setdefault(int((call.at - load_start) // 60), []).append(call)
    out = []
    for minute, own in sorted(minutes.items()):
        ok = [c.seconds for c in own if 200 <= c.status < 300]
        throttled = [c.seconds for c in own if c.status == 429]
        out.append(CallMinute(minute, len(ok), nearest_rank(ok, .5), len(throttled), nearest_rank(throttled, .5), nearest_rank(throttled, .95)))
    return out


def unloaded_success_p50(rows: list[CallMinute]) -> float | None:
    """The success p50 over the minutes before the courier's first 429 (the unloaded call)."""
    before: list[CallMinute] = []
    for row in rows:
        if row.throttled:
            break
        before.append(row)
    weights = [(r.success_p50, r.successes) for r in before if r.success_p50 is not None]
    if not weights:
        return None
    return sum(p * n for p, n in weights) / sum(n for _, n in weights)


def worst_slowdown(rows: list[CallMinute]) -> tuple[CallMinute, float] | None:
    """The minute whose success p50 is furthest above the unloaded p50 (minutes with >= 20 successes)."""
    base = unloaded_success_p50(rows)
    counted = [r for r in rows if r.success_p50 is not None and r.successes >= 20]
    if base is None or not counted:
        return None
    worst = max(counted, key=lambda r: r.success_p50)
    return worst, worst.success_p50 / base
