"""The shape's decisions as plain code (no Locust import, so unit tests do not monkey-patch the
test process with gevent): when the run ends and how many users the arrival pool needs.

The pool only has to be large enough for every request in flight: rate x response time (Little's
law). It is sized from the highest rate of the next few seconds and the recent p95 response time,
doubled for safety, and never shrinks during a run: a user stopped while it waits would drop the
arrival it was about to send.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from load.profiles import Profile

LOOKAHEAD = 5.0  # seconds of profile the pool is sized for ahead of time
LATENCY_FLOOR = 1.0  # s: size for at least this response time before any has been measured
REQUEST_TIMEOUT = 30.0  # s: API Gateway's own integration limit is 29 s; no request waits longer
MIN_USERS = 2  # per topology
POOL_STEP = 10
# After the last arrival, wait for the requests in flight (each ends by REQUEST_TIMEOUT), so every
# order sent has a recorded outcome in the CSV and the metrics.
DRAIN_GRACE = REQUEST_TIMEOUT + 5.0
MAX_SPAWN_RATE = 100.0  # Locust warns above this; the pool is sized LOOKAHEAD s ahead anyway


@dataclass
class ShapePlan:
    profile: Profile
    topologies: int
    users: int = 0

    def peak_rate_ahead(self, t: float) -> float:
        """Highest target rate in [t, t + LOOKAHEAD] (rates are linear inside a phase, so the
        ends of the window and the phase boundaries inside it are enough)."""
        end = min(t + LOOKAHEAD, self.profile.duration)
        instants = [t, end] + [b for b in self.profile.boundaries() if t < b < end]
        rates = [self.profile.rate_at(min(x, self.profile.duration - 1e-9)) or 0.0 for x in instants]
        # just before a boundary the ending phase's last rate matters too
        rates += [
            self.profile.rate_at(b - 1e-9) or 0.0
            for b in self.profile.boundaries()[1:]
            if t < b <= end
        ]
        return max(rates)

    def pool_size(self, t: float, latency_p95: float, backlog: int) -> int:
        budget = min(REQUEST_TIMEOUT, max(LATENCY_FLOOR, 2 * latency_p95))
        per_topology = math.ceil(self.peak_rate_ahead(t) * budget) + MIN_USERS
        wanted = per_topology * self.topologies + backlog
        # grow in steps of POOL_STEP: fewer respawns, quieter logs
        self.users = max(self.users, math.ceil(wanted / POOL_STEP) * POOL_STEP)
        return self.users

    def tick(
        self, t: float, latency_p95: float = 0.0, backlog: int = 0, in_flight: int = 0
    ) -> tuple[int, float] | None:
        """(users, spawn rate) for Locust at run time `t`, or None to end the run.

        After the profile's end the pool is kept until the last requests answer (at most
        DRAIN_GRACE s), so their results are counted.
        """
        if t >= self.profile.duration:
            if (in_flight == 0 and backlog == 0) or t >= self.profile.duration + DRAIN_GRACE:
                return None
            return self.users, self.spawn_rate
        users = self.pool_size(t, latency_p95, backlog)
        return users, self.spawn_rate

    @property
    def spawn_rate(self) -> float:
        # the whole pool within a second when small: users are cheap, a missing one costs an arrival
        return float(min(max(self.users, 1), MAX_SPAWN_RATE))
