"""Side by side or in turns: do both topologies fit on this machine's cores at once?

The lab is faithful only while the emulator is not a second boundary (issue #15). Both topologies
side by side share the machine's cores; on 2 cores the seed ramp at the article's account limit
(1,000) stretched every invocation (a probe's invoke took 5x its idle time) and drove the storm
to the limit, while the storm topology alone followed the simulation
(docs/evidence/account-1000). Where the cores are too few, each topology runs alone, one after
the other, and the report overlays them on the time since each one's load started.

The check prices the run's work in CPU, second by second:

    cores needed(t) = the lab's idle cores + cores busy with other work
                      + (Lambda invocations(t) x CPU per invocation + refused requests(t) x CPU per refusal) / 1 s

- invocations and refusals (courier 429s, Lambda throttles) per second come from the simulated
  run of the profile on the deployed configuration (`report.simulate`): the ideal platform's work,
  which is the least the emulator must do to show AWS's storm;
- the CPU per invocation and per refusal, the lab's idle cores and the cores other work keeps busy
  are measured on this machine just before the run (`report.calibrate`);
- the peak is the highest average over any `PEAK_WINDOW` seconds: a burst of a few seconds queues
  and passes, a minute of it stretches every invocation in it.

That peak is held against the utilisation at which a machine of this many cores still answers
within `report.overhead.RATIO_CEILING` (2x) of its unloaded time: by Erlang C (M/M/c), 71% of 2
cores, 84% of 4. Above it, requests queue for the CPU and the storm stretches; that is the bound
the experiment's overhead probe holds the emulator to.

The model leaves out what it cannot price from a steady calibration (cold starts of hundreds of
environments, memory pressure), so it is a lower bound on the need: it errs towards side by side.

Pure: no I/O; `report.experiment` gathers the inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

AUTO = "auto"
SIDE_BY_SIDE = "side-by-side"
IN_TURNS = "in-turns"
ORDERS = (AUTO, SIDE_BY_SIDE, IN_TURNS)
ENV = "EXPERIMENT_ORDER"

PEAK_WINDOW = 60  # seconds: the span over which the need is averaged at its peak
STRETCH_CEILING = 2.0  # the same bound as report.overhead.RATIO_CEILING (issue #15, point 3)


class OrderError(ValueError):
    """An unusable run order; the message is one line saying what to write instead."""


def parse_order(text: str | None) -> str:
    """`auto` when unset; one of ORDERS, else one clear line."""
    value = (text or AUTO).strip().lower()
    if value not in ORDERS:
        raise OrderError(f"run order {text!r} unknown: choose {', '.join(ORDERS)} ({ENV} or --order)")
    return value


@dataclass(frozen=True)
class UnitCost:
    """CPU per unit of the emulator's work on this machine, and what it costs doing nothing."""

    ms_per_invocation: float
    ms_per_refusal: float
    idle_cores: float  # the lab doing nothing (LocalStack's pollers and flushers)
    source: str  # how the figures were measured, for the printed line
    # cores busy with work that is not the lab's (other people's tests on a shared machine): the
    # run gets only what they leave
    busy_elsewhere: float = 0.0


@dataclass(frozen=True)
class Work:
    """One topology's work per second of its run, from the simulated run."""

    topology: str
    invocations: Mapping[int, float]  # second of the run -> Lambda invocations started
    refusals: Mapping[int, float]  # second of the run -> courier 429s + Lambda throttles


@dataclass(frozen=True)
class Need:
    cores: float  # at the peak, idle included
    at_second: int  # where the peak window starts, seconds into the run


@dataclass(frozen=True)
class Decision:
    order: str  # SIDE_BY_SIDE or IN_TURNS
    requested: str  # what was asked: AUTO, or an order forced by the user
    checked: str  # what the measured check alone says (SIDE_BY_SIDE or IN_TURNS), or "" if not made
    both: Need | None  # both topologies at once
    alone: dict[str, Need]  # each topology on its own
    cores: float
    ceiling: float  # the utilisation the cores can take within STRETCH_CEILING
    cost: UnitCost | None
    reason: str  # one line: the decision and its figures

    @property
    def in_turns(self) -> bool:
        return self.order == IN_TURNS


def cores_per_second(work: Iterable[Work], cost: UnitCost) -> list[float]:
    """Cores the given topologies need together in every second of the run (idle excluded)."""
    per_second: dict[int, float] = {}
    for w in work:
        for second, n in w.invocations.items():
            per_second[second] = per_second.get(second, 0.0) + n * cost.ms_per_invocation / 1000
        for second, n in w.refusals.items():
            per_second[second] = per_second.get(second, 0.0) + n * cost.ms_per_refusal / 1000
    if not per_second:
        return []
    first, last = min(per_second), max(per_second)
    return [per_second.get(s, 0.0) for s in range(first, last + 1)]


def peak(series: list[float], window: int = PEAK_WINDOW, first_second: int = 0) -> tuple[float, int]:
    """(highest mean over any `window` consecutive seconds, the second that window starts)."""
    window = max(1, window)
    if len(series) <= window:
        # a run shorter than the window: its work spread over the window, the seconds after it idle
        return sum(series) / window, first_second
    total = sum(series[:window])
    best, at = total, 0
    for i in range(window, len(series)):
        total += series[i] - series[i - window]
        if total > best:
            best, at = total, i - window + 1
    return best / window, first_second + at


def need(work: list[Work], cost: UnitCost, window: int = PEAK_WINDOW) -> Need:
    seconds = [s for w in work for s in (*w.invocations, *w.refusals)]
    mean, at = peak(cores_per_second(work, cost), window, min(seconds, default=0))
    return Need(cost.idle_cores + cost.busy_elsewhere + mean, at)


def erlang_c(servers: int, offered: float) -> float:
    """Probability that a request waits, M/M/c with `servers` and `offered` load (in servers)."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    term, total = 1.0, 1.0  # a^k / k!, summed for k < servers
    for k in range(1, servers):
        term *= offered / k
        total += term
    last = term * offered / (servers - offered)  # a^c / c! x c / (c - a), with term = a^(c-1) / (c-1)!
    return last / (total + last)


def stretch(servers: int, utilisation: float) -> float:
    """Mean response time over service time at this utilisation: 1 + C(c, a) / (c - a)."""
    offered = utilisation * servers
    if offered >= servers:
        return math.inf
    return 1.0 + erlang_c(servers, offered) / (servers - offered)


def utilisation_ceiling(cores: float, ceiling: float = STRETCH_CEILING) -> float:
    """The highest utilisation at which requests take at most `ceiling` x their unloaded time."""
    servers = max(1, math.floor(cores))
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if stretch(servers, mid) <= ceiling:
            low = mid
        else:
            high = mid
    return low


def available_cores(affinity: int, cpu_max: str | None = None) -> float:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 quota (`cpu.max`,
    "quota period" or "max period") when one is set."""
    cores = float(affinity)
    if cpu_max:
        parts = cpu_max.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                quota, period = float(parts[0]), float(parts[1])
            except ValueError:
                return cores
            if quota > 0 and period > 0:
                cores = min(cores, quota / period)
    return cores


def _name(profile: str) -> str:
    return f"the {profile} profile"


def decide(
    requested: str,
    work: list[Work],
    cost: UnitCost | None,
    cores: float,
    profile: str = "",
    limit: int | None = None,
    window: int = PEAK_WINDOW,
) -> Decision:
    """The run order: `requested` unless AUTO; for AUTO, side by side when both topologies' peak
    fits under the cores' utilisation ceiling, else in turns. Without a measured cost or a
    simulated run there is nothing to decide from: side by side, the default, said so."""
    requested = parse_order(requested)
    ceiling = utilisation_ceiling(cores)
    room = ceiling * cores
    what = _name(profile) + (f" at limit {limit}" if limit is not None else "")
    if cost is None or not work:
        missing = "no measured cost" if cost is None else "no simulated run"
        order = SIDE_BY_SIDE if requested == AUTO else requested
        how = "asked for" if requested != AUTO else "the default"
        return Decision(order, requested, "", None, {}, cores, ceiling, cost,
                        f"{order.replace('-', ' ')} ({how}): {missing}, so no measured check")
    both = need(work, cost, window)
    alone = {w.topology: need([w], cost, window) for w in work}
    fits = both.cores <= room
    checked = SIDE_BY_SIDE if fits else IN_TURNS
    order = checked if requested == AUTO else requested
    units = (f"measured {cost.ms_per_invocation:.1f} ms per Lambda invocation, {cost.ms_per_refusal:.1f} ms per "
             f"refused request, {cost.idle_cores:.2f} cores idle"
             + (f", {cost.busy_elsewhere:.2f} cores busy with other work" if cost.busy_elsewhere >= 0.01 else ""))
    machine = (f"this machine has {cores:g} cores; within {STRETCH_CEILING:g}x of unloaded latency they take "
               f"{room:.2f} ({ceiling:.0%}, Erlang C)")
    heaviest = max(alone.items(), key=lambda item: item[1].cores)
    together = "both topologies" if len(work) == 2 else f"all {len(work)} topologies"
    if fits:
        said = f"side by side: {what} needs about {both.cores:.2f} cores at its peak with {together} at once"
    else:
        said = (f"in turns: {what} needs about {both.cores:.2f} cores at its peak with {together} at once, "
                f"{heaviest[1].cores:.2f} for {heaviest[0]} alone")
        if heaviest[1].cores > room:
            said += " (even alone more than the cores take: that turn may be stretched too)"
    reason = f"{said} ({units}); {machine}"
    if requested != AUTO and requested != checked:
        reason = f"{order.replace('-', ' ')} ({ENV}={requested}, overriding the check); the check said {reason}"
    elif requested != AUTO:
        reason = f"{order.replace('-', ' ')} ({ENV}={requested}); the check agrees: {reason}"
    return Decision(order, requested, checked, both, alone, cores, ceiling, cost, reason)


def turn_order(chosen: Iterable[str], drains: dict[str, float] | None = None) -> list[str]:
    """The order of the turns: the first chosen topology (the storm, whose turn the overhead probe
    watches) first, then the others by their simulated drain, shortest first (catalogue order
    on ties). A drain the experiment cuts short leaves its work running into the next turn (the
    catalogue's smoke run: the circuit breaker's parked orders were still cycling through the
    API destination's turn); last, it loads no other topology's turn."""
    names = list(chosen)
    if not names or not drains:
        return names
    first, rest = names[0], names[1:]
    return [first, *sorted(rest, key=lambda name: drains.get(name, 0.0))]
