"""Capacity preview: predict, before a run, where the configuration cannot hold.

The article's advice is to know your volumes and your downstream limits up front. This module is
the arithmetic of that advice, kept pure (no I/O) so it can be unit-tested: the numbers it works
from are gathered from the real configuration by `report.config_sources`.

The model is deliberately simple and says so: steady state per arrival rate, Little's law
(concurrency = arrival rate x duration), mean retry waits, courier calls failing independently.
It is a prediction to put beside the measurement, not a simulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab_kernel.topologies import catalogue
from report.model_inputs import CapacityInputs, Phase, Retry, profile_timeline

if TYPE_CHECKING:
    from report.simulate import SimulatedTopology, Simulation

__all__ = ["CapacityInputs", "Phase", "Retry", "preview", "profile_timeline", "render_text"]


@dataclass(frozen=True)
class Finding:
    title: str
    holds: bool
    detail: str


@dataclass(frozen=True)
class SteadyState:
    """What one arrival rate settles to in one topology."""

    arrival: float  # orders/s offered
    call_failure: float  # share of courier calls failing (by design + 429)
    calls_per_order: float
    courier_calls: float  # requests/s offered to the courier
    invocation_seconds: float  # mean delivery invocation duration
    concurrency: float  # delivery concurrency demanded (Little's law)
    success: float  # share of orders delivered


@dataclass(frozen=True)
class TopologyPrediction:
    topology: str
    peak: SteadyState
    expected_success: float  # over the whole profile
    peak_concurrency: float
    reaches_account_limit: bool
    backlog_at_end: float = 0.0  # orders waiting in the queue when the load stops
    drain_seconds: float = 0.0  # time to work that backlog off after the load stops
    throughput: float = 0.0  # orders/s the topology can deliver


@dataclass(frozen=True)
class Preview:
    inputs: CapacityInputs
    findings: tuple[Finding, ...]
    no_flow_control: TopologyPrediction
    flow_control: TopologyPrediction
    total_orders: float
    peak_rate: float
    profile_seconds: float
    simulation: Simulation | None = None  # the profile played out in time (report.simulate)
    spread: tuple[Simulation, ...] = ()  # the same under several seeds (report.simulate.SPREAD_SEEDS)


def _storm() -> str:
    """The catalogue's storm topology: the asynchronous case of the arithmetic below."""
    return catalogue().storm


def _remedy() -> str:
    """The catalogue's remedy topology: the queued case."""
    return catalogue().remedy


def _label(name: str) -> str:
    """`name:` padded so the pair's lines line up (a longer name: one space after it)."""
    width = max(len(n) for n in catalogue().pair) + 2
    return f"{name}:".ljust(max(width, len(name) + 2))


def _attempt_sums(p: float, retry: Retry, success_seconds: float) -> tuple[float, float, float]:
    """Per invocation: expected courier calls, expected duration, P(all attempts fail).

    Attempt k is reached with probability p^(k-1); a successful call takes `success_seconds`,
    a failed one (error or 429) answers at once; a wait follows every failed attempt but the last.
    """
    calls = sum(p**k for k in range(retry.attempts))
    duration = sum(p ** (k - 1) * (1 - p) * success_seconds for k in range(1, retry.attempts + 1))
    duration += sum(p**k * retry.mean_wait for k in range(1, retry.attempts))
    return calls, duration, p**retry.attempts


def attempts_within_timeout(retry: Retry, timeout: float, call_seconds: float) -> int:
    """How many attempts start before the function timeout when every wait is the longest."""
    k = 0
    # attempt k+1 starts after k calls and k waits
    while k < retry.attempts and k * (call_seconds + retry.max_wait) < timeout:
        k += 1
    return k


def steady_no_flow_control(inputs: CapacityInputs, arrival: float) -> SteadyState:
    """Direct asynchronous invocation: every order runs at once, retries feed the courier.

    Fixed point: the courier answers 429 to the share of calls above its rate, which makes more
    calls fail, which makes more retries and more calls.
    """
    success_seconds = (inputs.courier_latency_min + inputs.courier_latency_max) / 2
    p = inputs.courier_failure_rate
    invocations = calls_inv = duration = fail_inv = 0.0
    for _ in range(200):
        calls_inv, duration, fail_inv = _attempt_sums(p, inputs.retry, success_seconds)
        duration = min(duration, inputs.function_timeout)
        invocations = sum(fail_inv**j for j in range(inputs.async_retries + 1))
        offered = arrival * invocations * calls_inv
        admitted = 1.0 if offered <= inputs.courier_rate else inputs.courier_rate / offered
        target = 1 - (1 - inputs.courier_failure_rate) * admitted
        new_p = p + 0.5 * (target - p)  # damped: the plain iteration can oscillate
        if abs(new_p - p) < 1e-9:
            p = new_p
            break
        p = new_p
    calls_inv, duration, fail_inv = _attempt_sums(p, inputs.retry, success_seconds)
    duration = min(duration, inputs.function_timeout)
    invocations = sum(fail_inv**j for j in range(inputs.async_retries + 1))
    return SteadyState(
        arrival=arrival,
        call_failure=p,
        calls_per_order=invocations * calls_inv,
        courier_calls=arrival * invocations * calls_inv,
        invocation_seconds=duration,
        concurrency=arrival * invocations * duration,
        success=1 - fail_inv ** (inputs.async_retries + 1),
    )


def flow_control_throughput(inputs: CapacityInputs) -> tuple[float, SteadyState]:
    """Orders/s the queue's consumers can deliver at the event source mapping's concurrency.

    With the concurrency capped, the courier sees at most cap x calls/duration requests/s; if that
    still exceeds the usage plan the courier rate bounds it.
    """
    success_seconds = (inputs.courier_latency_min + inputs.courier_latency_max) / 2
    p = inputs.courier_failure_rate
    calls, duration, fail = _attempt_sums(p, inputs.retry, success_seconds)
    duration = min(duration, inputs.function_timeout)
    cap = inputs.esm_max_concurrency
    throughput = min(cap / duration, inputs.courier_rate / calls)
    state = SteadyState(
        arrival=throughput,
        call_failure=p,
        calls_per_order=calls,
        courier_calls=throughput * calls,
        invocation_seconds=duration,
        concurrency=min(cap, throughput * duration),
        success=1 - fail,
    )
    return throughput, state


def preview(inputs: CapacityInputs, simulated: bool = True) -> Preview:
    """The arithmetic findings and, unless `simulated` is False, the simulated run beside them."""
    if not inputs.phases:
        raise ValueError(f"profile {inputs.profile!r} has no phases")
    timeline = profile_timeline(inputs.phases)
    total = sum(timeline)
    peak = max(timeline)
    seconds = float(len(timeline))
    retry = inputs.retry
    # sampled latencies come out as 1.9999 s: state them to 0.1 s
    call_max = round(inputs.courier_latency_max, 1)
    if inputs.http_timeout is not None:
        call_max = min(call_max, inputs.http_timeout)

    findings: list[Finding] = []
    budget = retry.waits * retry.max_wait
    worst = budget + retry.attempts * call_max
    fit = attempts_within_timeout(retry, inputs.function_timeout, 0.0)
    findings.append(
        Finding(
            "retry budget vs function timeout",
            budget <= inputs.function_timeout,
            f"{retry.waits} waits x up to {retry.max_wait:g} s = {budget:g} s of waiting "
            f"({worst:g} s with {retry.attempts} calls of up to {call_max:g} s) vs a "
            f"{inputs.function_timeout:g} s timeout: only {fit} of {retry.attempts} attempts fit "
            f"when waits are long; the function is killed before tenacity re-raises, and Lambda "
            f"re-runs it up to {inputs.async_retries} more times (up to "
            f"{(inputs.async_retries + 1) * retry.attempts} courier calls for one order)",
        )
    )
    findings.append(
        Finding(
            "offered peak vs courier limit",
            peak <= inputs.courier_rate,
            f"peak {peak:g} orders/s vs usage plan {inputs.courier_rate:g} req/s "
            f"(burst {inputs.courier_burst:g}); even with no throttling each order costs "
            f"{1 / (1 - inputs.courier_failure_rate) if inputs.courier_failure_rate < 1 else float('inf'):.2f} "
            f"calls at a {inputs.courier_failure_rate:.0%} failure rate, so "
            f"{peak / max(1 - inputs.courier_failure_rate, 1e-9):.1f} req/s offered; at most "
            f"{inputs.courier_rate * (1 - inputs.courier_failure_rate):.1f} orders/s can succeed "
            f"({min(1.0, inputs.courier_rate * (1 - inputs.courier_failure_rate) / peak):.0%} of the peak)",
        )
    )

    nfc_states = {rate: steady_no_flow_control(inputs, rate) for rate in sorted(set(timeline))}
    nfc_peak = nfc_states[peak]
    nfc_success = sum(r * nfc_states[r].success for r in timeline) / total if total else 1.0
    nfc_concurrency = max(s.concurrency for s in nfc_states.values())
    nfc = TopologyPrediction(
        topology=_storm(),
        peak=nfc_peak,
        expected_success=nfc_success,
        peak_concurrency=min(nfc_concurrency, inputs.account_limit),
        reaches_account_limit=nfc_concurrency >= inputs.account_limit,
    )
    findings.append(
        Finding(
            f"{_storm()}: expected concurrency = arrival rate x duration",
            not nfc.reaches_account_limit,
            f"at {peak:g} orders/s x {nfc_peak.concurrency / max(peak * nfc_peak.invocation_seconds, 1e-9):.2f} "
            f"invocations per order x {nfc_peak.invocation_seconds:.1f} s per invocation = "
            f"{nfc_concurrency:.0f} concurrent vs account limit {inputs.account_limit}; "
            f"courier calls fail {nfc_peak.call_failure:.0%} ({nfc_peak.courier_calls:.0f} req/s offered), "
            f"{nfc_peak.success:.0%} of orders succeed at the peak, {nfc_success:.0%} over the profile",
        )
    )

    fc_throughput, fc_state = flow_control_throughput(inputs)
    backlog = 0.0
    for rate in timeline:
        backlog = max(0.0, backlog + rate - fc_throughput)
    drain = backlog / fc_throughput if fc_throughput > 0 else float("inf")
    fc = TopologyPrediction(
        topology=_remedy(),
        peak=fc_state,
        expected_success=fc_state.success,
        peak_concurrency=fc_state.concurrency,
        reaches_account_limit=False,
        backlog_at_end=backlog,
        drain_seconds=drain,
        throughput=fc_throughput,
    )
    findings.append(
        Finding(
            f"{_remedy()}: queue throughput vs peak",
            fc_throughput >= peak,
            f"{inputs.esm_max_concurrency} consumers / {fc_state.invocation_seconds:.2f} s per "
            f"delivery = {fc_throughput:.1f} orders/s (courier sees {fc_state.courier_calls:.1f} "
            f"req/s of {inputs.courier_rate:g}) vs peak {peak:g}: about {backlog:.0f} orders "
            f"queued when the load stops, {drain:.0f} s to drain; none lost "
            f"({fc_state.success:.2%} per receive)",
        )
    )
    simulation = None
    spread: tuple[Simulation, ...] = ()
    if simulated:
        from report.simulate import simulate_spread  # imported here: it builds on this module

        spread = simulate_spread(inputs)
        simulation = spread[0]
    return Preview(
        inputs=inputs,
        findings=tuple(findings),
        no_flow_control=nfc,
        flow_control=fc,
        total_orders=total,
        peak_rate=peak,
        profile_seconds=seconds,
        simulation=simulation,
        spread=spread,
    )


def render_text(result: Preview) -> str:
    """The preview as the lines printed before a run and put in the report."""
    i = result.inputs
    lines = [
        f"Capacity preview for profile {i.profile!r}: {result.total_orders:.0f} orders over "
        f"{result.profile_seconds / 60:.1f} min, peak {result.peak_rate:g} orders/s",
    ]
    for f in result.findings:
        lines.append(f"  [{'ok  ' if f.holds else 'FAIL'}] {f.title}: {f.detail}")
    lines.append("  steady state (no clock: an upper bound on the storm, blind to retry timing):")
    n, c = result.no_flow_control, result.flow_control
    lines.append(
        f"    {_label(_storm())}peak concurrency {n.peak_concurrency:.0f}"
        f"{' (the account limit)' if n.reaches_account_limit else ''}, "
        f"actual success {n.expected_success:.0%}"
    )
    lines.append(
        f"    {_label(_remedy())}delivery concurrency {c.peak_concurrency:.0f}, "
        f"{c.throughput:.1f} orders/s, backlog {c.backlog_at_end:.0f}, drain {c.drain_seconds:.0f} s, "
        f"success {c.expected_success:.2%} after the drain"
    )
    if result.simulation is not None:
        lines += _simulation_lines(result.simulation)
    if i.sources:
        lines.append("  from: " + "; ".join(f"{k} <- {v}" for k, v in i.sources.items()))
    return "\n".join(lines)


def _simulation_lines(sim: Simulation) -> list[str]:
    n, c = sim.no_flow_control, sim.flow_control
    throttles = ", ".join(f"{role} {count}" for role, count in sorted(n.throttles.items())) or "none"
    lowest = f"{n.lowest_delivery_success:.0%}" if n.lowest_delivery_success is not None else "n/a"
    return [
        f"  simulated run (report.simulate: ideal platform, seed {sim.seed}; the timing above cannot show):",
        f"    {_label(_storm())}{n.accepted} of {n.offered} orders accepted, peak concurrency "
        f"{n.peak_account_concurrency} (delivery {n.peak_delivery_concurrency}), throttles: {throttles}; "
        f"{n.courier_429s} of {n.courier_calls} courier calls got 429; delivery success bottoms out at "
        f"{lowest} a minute; {n.delivered} delivered, {n.dead_lettered} dead-lettered, "
        f"{n.duplicated} duplicated: actual success {n.actual_success or 0:.1%} once every retry has run",
        f"    {_label(_remedy())}{c.accepted} accepted, delivery concurrency {c.peak_delivery_concurrency}; "
        f"{c.delivered} delivered, {c.dead_lettered} dead-lettered: {c.actual_success or 0:.1%}; the queue's "
        f"last order delivered {c.last_delivery_after_load:.0f} s after the load",
    ] + [_fix_line(r) for name, r in sim.topologies.items() if name not in catalogue().pair]


def _fix_line(r: SimulatedTopology) -> str:
    """Any other chosen topology (`TOPOLOGIES`), simulated: the figures its expectations compare."""
    lowest = f"{r.lowest_delivery_success:.0%}" if r.lowest_delivery_success is not None else "n/a"
    breaker = (f"; the circuit opened {r.circuit_opened} times, {r.parked} calls parked their order"
               + (f", {r.still_parked} orders still parked at the horizon" if r.still_parked else "")
               if r.circuit_opened or r.parked else "")
    return (f"    {_label(r.topology)}{r.accepted} of {r.offered} accepted, peak concurrency "
            f"{r.peak_account_concurrency} of {r.account_limit} (delivery {r.peak_delivery_concurrency}), "
            f"{sum(r.throttles.values())} throttles; {r.courier_429s} of {r.courier_calls} courier calls got 429; "
            f"lowest minute {lowest}; {r.delivered} delivered, {r.dead_lettered} dead-lettered{breaker}; "
            f"last delivered {r.last_delivery_after_load:.0f} s after the load")
