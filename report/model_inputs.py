"""What the capacity preview and the simulation both start from: the load profile's phases, the
delivery function's retry policy and the configuration's numbers (`CapacityInputs`).

Its own module so `report.capacity` (the arithmetic) and `report.simulate` (the profile played
out in time) both build on it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Phase:
    """One phase of a load profile: the arrival rate ramps linearly from `start` to `end`."""

    name: str
    seconds: float
    start_rate: float
    end_rate: float

    def rate_at(self, t: float) -> float:
        if self.seconds <= 0:
            return self.end_rate
        return self.start_rate + (self.end_rate - self.start_rate) * min(max(t / self.seconds, 0), 1)


@dataclass(frozen=True)
class Retry:
    """tenacity's policy in the delivery function: stop_after_attempt(N), wait_fixed + wait_random."""

    attempts: int
    wait_fixed: float
    wait_random_min: float
    wait_random_max: float

    @property
    def waits(self) -> int:
        return max(self.attempts - 1, 0)

    @property
    def max_wait(self) -> float:
        return self.wait_fixed + self.wait_random_max

    @property
    def min_wait(self) -> float:
        return self.wait_fixed + self.wait_random_min

    @property
    def mean_wait(self) -> float:
        return self.wait_fixed + (self.wait_random_min + self.wait_random_max) / 2


@dataclass(frozen=True)
class CapacityInputs:
    profile: str
    phases: tuple[Phase, ...]
    function_timeout: float  # delivery function timeout, seconds
    retry: Retry
    courier_rate: float  # usage plan rateLimit, requests/s
    courier_burst: float  # usage plan burstLimit
    courier_failure_rate: float  # share of courier calls that fail at once (by design)
    courier_latency_min: float  # seconds a successful courier call takes, range
    courier_latency_max: float
    account_limit: int  # account concurrency limit (per topology: one account each)
    async_retries: int  # Lambda asynchronous retries (async-invoke wiring)
    esm_max_concurrency: int  # event source mapping maximum concurrency (sqs-esm wiring)
    http_timeout: float | None = None  # the delivery function's courier call timeout
    queue_visibility_timeout: float = 150.0  # sqs-esm: a failed receive comes back after it
    max_receive_count: int = 5  # sqs-esm: receives before the DLQ
    sources: dict[str, str] = field(default_factory=dict)  # where each number came from



def profile_timeline(phases: tuple[Phase, ...], step: float = 1.0) -> list[float]:
    """The arrival rate every `step` seconds over the whole profile."""
    rates: list[float] = []
    for phase in phases:
        t = 0.0
        while t < phase.seconds:
            rates.append(phase.rate_at(t + step / 2))
            t += step
    return rates
