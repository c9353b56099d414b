"""Load profiles as data (`load/profiles.toml`): phases of held or linearly ramped arrival rates.

The profile is the single source of truth for both the Locust shape (how many users to keep) and
the arrival scheduler (when each request starts), so the rate the tests check is the rate the
profile states.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

# `$LAB_PROFILES_FILE` replaces the lab's profiles everywhere at once (the load, Locust, the
# report's preview), e.g. a profile of a few seconds for a test of the experiment
PROFILES_FILE = Path(os.environ.get("LAB_PROFILES_FILE") or Path(__file__).resolve().parent / "profiles.toml")


class ProfileError(ValueError):
    """A profile file or name is unusable; the message is one line saying what to fix."""


@dataclass(frozen=True)
class Phase:
    name: str
    duration: float
    start_rate: float
    end_rate: float

    def rate_at(self, elapsed: float) -> float:
        """Arrival rate (req/s) `elapsed` seconds into this phase (linear between the ends)."""
        return self.start_rate + (self.end_rate - self.start_rate) * (elapsed / self.duration)

    def arrivals(self, elapsed: float) -> float:
        """Expected arrivals from the phase start to `elapsed`: the integral of the rate."""
        slope = (self.end_rate - self.start_rate) / self.duration
        return self.start_rate * elapsed + slope * elapsed * elapsed / 2

    @property
    def mean_rate(self) -> float:
        return (self.start_rate + self.end_rate) / 2


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    phases: tuple[Phase, ...]

    @property
    def duration(self) -> float:
        return sum(p.duration for p in self.phases)

    @property
    def peak_rate(self) -> float:
        return max(max(p.start_rate, p.end_rate) for p in self.phases)

    def boundaries(self) -> list[float]:
        """Start time of every phase, then the end of the profile."""
        times = [0.0]
        for phase in self.phases:
            times.append(times[-1] + phase.duration)
        return times

    def locate(self, t: float) -> tuple[int, Phase, float] | None:
        """(index, phase, seconds into it) at run time `t`; None once the profile is over.

        A boundary belongs to the phase it starts, as in artillery.
        """
        if t < 0:
            raise ValueError(f"run time must be >= 0, got {t}")
        start = 0.0
        for index, phase in enumerate(self.phases):
            if t < start + phase.duration:
                return index, phase, t - start
            start += phase.duration
        return None

    def rate_at(self, t: float) -> float | None:
        """Target arrival rate at run time `t`; None once the profile is over."""
        where = self.locate(t)
        return None if where is None else where[1].rate_at(where[2])

    def arrivals(self, t: float) -> float:
        """Expected arrivals (per topology) from the start to run time `t` (capped at the end)."""
        total = 0.0
        start = 0.0
        for phase in self.phases:
            if t <= start:
                break
            total += phase.arrivals(min(t - start, phase.duration))
            start += phase.duration
        return total

    def time_of_arrival(self, n: int) -> float | None:
        """Run time at which the n-th arrival (1-based) is due; None if past the profile's end.

        Arrival n is due when the integral of the rate reaches n - 1, so the first request goes at
        t = 0 as in artillery. Found by bisection: `arrivals` is monotonic and cheap.
        """
        target = n - 1
        if target >= self.arrivals(self.duration) or self.duration == 0:
            return None
        lo, hi = 0.0, self.duration
        for _ in range(60):
            mid = (lo + hi) / 2
            if self.arrivals(mid) < target:
                lo = mid
            else:
                hi = mid
        return hi


def _number(raw: object, where: str, key: str, minimum: float, inclusive: bool) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ProfileError(f"{where}: '{key}' must be a number, got {raw!r}")
    if raw < minimum or (raw == minimum and not inclusive):
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise ProfileError(f"{where}: '{key}' must be {bound}, got {raw!r}")
    return float(raw)


def parse_profile(name: str, table: object, source: str) -> Profile:
    where = f"{source}: profile '{name}'"
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: expected a table")
    raw_phases = table.get("phases")
    if not isinstance(raw_phases, list) or not raw_phases:
        raise ProfileError(f"{where}: 'phases' must be a non-empty list")
    phases: list[Phase] = []
    previous_end: float | None = None
    for number, raw in enumerate(raw_phases, start=1):
        at = f"{where} phase {number}"
        if not isinstance(raw, dict):
            raise ProfileError(f"{at}: expected a table like {{ duration = 60, rate = 2 }}")
        unknown = set(raw) - {"name", "duration", "rate", "from", "to"}
        if unknown:
            raise ProfileError(f"{at}: unknown key(s) {', '.join(sorted(unknown))}")
        duration = _number(raw.get("duration"), at, "duration", 0, inclusive=False)
        if "rate" in raw:
            if "from" in raw or "to" in raw:
                raise ProfileError(f"{at}: give either 'rate' or 'from'/'to', not both")
            start = end = _number(raw["rate"], at, "rate", 0, inclusive=True)
        elif "to" in raw:
            end = _number(raw["to"], at, "to", 0, inclusive=True)
            if "from" in raw:
                start = _number(raw["from"], at, "from", 0, inclusive=True)
            elif previous_end is None:
                raise ProfileError(f"{at}: a first phase ramp needs 'from'")
            else:
                start = previous_end
        else:
            raise ProfileError(f"{at}: needs 'rate' (held) or 'to' (ramp)")
        phase_name = raw.get("name", f"phase {number}")
        if not isinstance(phase_name, str) or not phase_name:
            raise ProfileError(f"{at}: 'name' must be a non-empty string")
        phases.append(Phase(phase_name, duration, start, end))
        previous_end = end
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ProfileError(f"{where}: 'description' must be a string")
    profile = Profile(name, description, tuple(phases))
    if profile.peak_rate <= 0:
        raise ProfileError(f"{where}: every rate is 0, nothing would be sent")
    return profile


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, Profile]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileError(f"profile file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{path}: not valid TOML ({error})") from None
    profiles = data.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise ProfileError(f"{path}: no [profiles.NAME] tables")
    return {name: parse_profile(name, table, str(path)) for name, table in profiles.items()}


def get_profile(name: str, path: Path = PROFILES_FILE) -> Profile:
    profiles = load_profiles(path)
    if name not in profiles:
        raise ProfileError(
            f"unknown profile {name!r}: choose one of {', '.join(sorted(profiles))} ({path})"
        )
    return profiles[name]
