"""Nearest-rank quantiles: every figure the report prints is a value that was measured, never an
interpolation between two. One definition for the latency table, the courier calls per minute
and the overhead probe."""

from __future__ import annotations

import math
from collections.abc import Sequence


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The smallest value with at least a share `q` of the values at or below it; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
