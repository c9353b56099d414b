"""What the run actually did, per phase and per topology: the numbers the progress lines print,
the end-of-run table, and `phases.csv` / `phases.json` that tests and reports read.

Requests are counted when they START (the instant the arrival model controls), so a phase's
actual rate does not depend on how slowly the system under test answers.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from load.profiles import Profile

WINDOW = 5.0  # seconds of history behind each progress line's "actual" rate


@dataclass
class TopologyStats:
    sent_per_phase: list[int]
    failed_per_phase: list[int]
    recent_sends: deque = field(default_factory=deque)
    recent_latencies: deque = field(default_factory=lambda: deque(maxlen=200))
    lateness_max: float = 0.0  # worst delay between a ticket's due time and its send

    @property
    def sent(self) -> int:
        return sum(self.sent_per_phase)

    @property
    def failed(self) -> int:
        return sum(self.failed_per_phase)


@dataclass(frozen=True)
class PhaseResult:
    index: int
    name: str
    start: float
    end: float
    target_rate: float  # mean target arrivals per second over the phase
    topology: str
    sent: int
    failed: int

    @property
    def actual_rate(self) -> float:
        return self.sent / (self.end - self.start)

    @property
    def deviation(self) -> float:
        """(actual - target) / target; 0 when the target is 0 and nothing was sent."""
        if self.target_rate == 0:
            return 0.0 if self.sent == 0 else float("inf")
        return self.actual_rate / self.target_rate - 1


class RunStats:
    def __init__(self, profile: Profile, topologies: tuple[str, ...]):
        self.profile = profile
        self.topologies = topologies
        n = len(profile.phases)
        self.by_topology = {t: TopologyStats([0] * n, [0] * n) for t in topologies}

    def _phase_index(self, t: float) -> int:
        where = self.profile.locate(t)
        # a send that lands after the last boundary (a late ticket) counts in the last phase
        return len(self.profile.phases) - 1 if where is None else where[0]

    def on_send(self, topology: str, t: float, due: float) -> int:
        """Record a request start at run time `t`; returns its phase index."""
        stats = self.by_topology[topology]
        index = self._phase_index(t)
        stats.sent_per_phase[index] += 1
        stats.recent_sends.append(t)
        stats.lateness_max = max(stats.lateness_max, t - due)
        return index

    def on_result(self, topology: str, phase_index: int, latency: float, failed: bool) -> None:
        stats = self.by_topology[topology]
        stats.recent_latencies.append(latency)
        if failed:
            stats.failed_per_phase[phase_index] += 1

    def actual_rate(self, topology: str, now: float) -> float:
        sends = self.by_topology[topology].recent_sends
        while sends and sends[0] < now - WINDOW:
            sends.popleft()
        return len(sends) / min(WINDOW, now) if now > 0 else 0.0

    def latency_p95(self) -> float:
        """Recent p95 response time over all topologies (0 before any response)."""
        values = sorted(v for s in self.by_topology.values() for v in s.recent_latencies)
        return values[int(0.95 * (len(values) - 1))] if values else 0.0

    def progress_line(self, now: float, users: int, backlog: int) -> str:
        where = self.profile.locate(now)
        if where is None:
            head = f"[{now:6.0f}s] profile done, draining"
        else:
            index, phase, _ = where
            target = self.profile.rate_at(now) or 0.0
            span = min(WINDOW, now)
            # the actual rate is a 5 s average, so on a ramp compare it with the same average
            averaged = (
                (self.profile.arrivals(now) - self.profile.arrivals(now - span)) / span if span else 0
            )
            head = (
                f"[{now:6.0f}s/{self.profile.duration:.0f}s] phase {index + 1}/"
                f"{len(self.profile.phases)} {phase.name!r} target {target:5.2f} req/s "
                f"(last {span:.0f} s: {averaged:5.2f})"
            )
        parts = [
            f"{t} {self.actual_rate(t, now):5.2f} req/s ({s.sent} sent, {s.failed} failed)"
            for t, s in self.by_topology.items()
        ]
        return f"{head} | actual: {' | '.join(parts)} | users {users}, backlog {backlog}"

    def results(self) -> list[PhaseResult]:
        bounds = self.profile.boundaries()
        rows = []
        for index, phase in enumerate(self.profile.phases):
            for topology, stats in self.by_topology.items():
                rows.append(
                    PhaseResult(
                        index, phase.name, bounds[index], bounds[index + 1], phase.mean_rate,
                        topology, stats.sent_per_phase[index], stats.failed_per_phase[index],
                    )
                )
        return rows

    def summary_table(self) -> str:
        lines = [
            f"{'phase':<32} {'topology':<16} {'target/s':>9} {'actual/s':>9} {'dev':>7} "
            f"{'sent':>6} {'failed':>6}"
        ]
        for r in self.results():
            lines.append(
                f"{r.index + 1}. {r.name:<29} {r.topology:<16} {r.target_rate:9.2f} "
                f"{r.actual_rate:9.2f} {r.deviation:+7.1%} {r.sent:6d} {r.failed:6d}"
            )
        return "\n".join(lines)

    def write(self, directory: Path, extra: dict) -> None:
        """phases.csv and phases.json (the same rows, plus run facts in the JSON)."""
        directory.mkdir(parents=True, exist_ok=True)
        rows = [
            {
                "phase": r.index + 1, "name": r.name, "start_s": r.start, "end_s": r.end,
                "topology": r.topology, "target_rps": round(r.target_rate, 4),
                "actual_rps": round(r.actual_rate, 4), "deviation": round(r.deviation, 4),
                "sent": r.sent, "failed": r.failed,
            }
            for r in self.results()
        ]
        with open(directory / "phases.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        lateness = {t: round(s.lateness_max, 3) for t, s in self.by_topology.items()}
        (directory / "phases.json").write_text(
            json.dumps({**extra, "max_lateness_s": lateness, "phases": rows}, indent=2) + "\n"
        )
