"""How far a measured run is from the ideal-platform simulation, figure by figure (issue #15).

A figure is faithful when the measured value is within 25% of the simulated one; a count where
either side is under 100 is held to 25 orders/calls instead, since a relative bound on a handful
of events says little (2 vs 4 duplicated orders is "100% off" and means nothing).

The simulation is random too (the courier's failures and latencies, tenacity's waits), so it is
run with several seeds: the bound then applies to the range those seeds give (the smoke profile's
dead-lettered orders range from 71 to 114 over three seeds), not to one seed's draw.
"""

from __future__ import annotations

from dataclasses import dataclass

TOLERANCE = 0.25
SMALL_COUNT = 100
SMALL_COUNT_TOLERANCE = 25


@dataclass(frozen=True)
class Comparison:
    quantity: str
    simulated: float | None
    measured: float | None
    share: bool = False  # a fraction (success rate), else a count
    low: float | None = None  # the range over the simulation's seeds, when several were run
    high: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.simulated is None or self.measured is None or self.simulated == 0:
            return None
        return self.measured / self.simulated

    @property
    def faithful(self) -> bool | None:
        """None when either side is missing."""
        s, m = self.simulated, self.measured
        if s is None or m is None:
            return None
        low = s if self.low is None else min(self.low, s)
        high = s if self.high is None else max(self.high, s)
        if low <= m <= high:
            return True
        nearest = low if m < low else high
        if not self.share and min(nearest, m) < SMALL_COUNT:
            return abs(m - nearest) <= SMALL_COUNT_TOLERANCE
        if nearest == 0:
            return m == 0
        return abs(m - nearest) <= TOLERANCE * abs(nearest)

    def bound(self) -> str:
        if not self.share and self.simulated is not None and self.measured is not None and (
            min(self.low if self.low is not None else self.simulated, self.measured) < SMALL_COUNT
        ):
            return f"+-{SMALL_COUNT_TOLERANCE}"
        return f"+-{TOLERANCE:.0%}"


def outside(comparisons: list[Comparison]) -> list[Comparison]:
    return [c for c in comparisons if c.faithful is False]
