"""Simulated run: the configuration played out in time, order by order, on an ideal platform.

The capacity preview's arithmetic (`report.capacity`) is steady state. What decides an order's
fate without flow control is timing: Lambda retries a failed event after 1 and then 2 more
minutes, so an order is lost only when the courier is still overloaded at all three of its
invocations. A short overload that ends before the retries land loses nothing, whatever its peak.

This module plays a profile out event by event, for each catalogue topology: arrivals, the account
concurrency limit (shared by the notify handler, the delivery function and the courier's own
function; the topology's `account_limit_factor` scales it), the delivery function's reserved
concurrency (its own pool: invocations beyond it are throttled, and the rest of the account keeps
the limit minus the reservation), throttle back-off, tenacity's attempts and waits, the function
timeout, the usage plan's token bucket, Lambda's asynchronous retries, the queue's visibility
timeout and redrive, and the circuit breaker (`_Breaker`, lambdas/common/lab_breaker's behaviour).
Its random numbers come from a fixed seed, so a prediction is repeatable and testable.

"Ideal" means the emulator itself costs no time: on a loaded machine requests queue inside
LocalStack, which weakens the storm (fewer courier calls per second) and the measured outcome is
no worse than simulated. Pure: no I/O.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, deque
from dataclasses import dataclass, field

from bootstrap.topology import BREAKER_RETRY_MAX_CONCURRENCY, BREAKER_RETRY_VISIBILITY_TIMEOUT, COURIER_DESTINATION_RATE
from lab_breaker import BreakerSettings, park_delay

from lab_kernel.topologies import API_DESTINATION, ASYNC_INVOKE, SQS_ESM, Topology, Wiring, catalogue, selected
from lab_platform.api_destination.schedule import RetryPolicy, backoff
from report.model_inputs import CapacityInputs, profile_timeline

# A failed courier call (an error by design, or the usage plan's 429) answers at once; 50 ms
# stands for the round trip.
FAILED_CALL_SECONDS = 0.05
# The notify handler's own run: it validates the order and puts one event.
NOTIFY_SECONDS = 0.1
# Minutes with fewer invocation outcomes than this are left out of the lowest per-minute
# delivery success (a minute with 2 outcomes says little).
MIN_OUTCOMES_PER_MINUTE = 10


# Lambda's asynchronous retries: retry n waits n x 60 s (AWS: 1 minute, then 2 more); throttled
# events back off 1, 2, 4 ... s, to at most 5 minutes (as lab_platform.async_invoke does).
ASYNC_RETRY_BASE_DELAY = 60.0
MAX_THROTTLE_DELAY = 300.0
# The API-destination wiring's target as bootstrap deploys it: no RetryPolicy, so AWS's defaults.
DESTINATION_RETRY_POLICY = RetryPolicy()
# The breaker as bootstrap deploys it: lab_breaker's own defaults (failure 3, success 2, open 10 s).
# Its retry queue (bootstrap.topology.BREAKER_RETRY_VISIBILITY_TIMEOUT): a failed receive of a
# parked order comes back after the visibility timeout; the queue has no DLQ, so a parked order is
# never dropped. SQS delays are whole seconds, so a parked order becomes visible on a whole second.
BREAKER = BreakerSettings()
# An invocation that parked its order ends as a success for Lambda, but delivered nothing.
PARKED = "parked"
# A parked order is a new message at each park, so the retry queue's retention never drops it: a
# courier that never recovers would keep it cycling forever. The run stops this long after the
# load; orders still parked then are counted as such (the breaker's cost when nothing heals).
HORIZON_AFTER_LOAD = 24 * 3600.0


@dataclass
class SimulatedTopology:
    topology: str
    offered: int  # orders the load sends
    accepted: int = 0  # notify handler ran (the article's START)
    delivered: int = 0  # orders the courier scheduled at least once
    dead_lettered: int = 0  # on-failure destination / DLQ
    duplicated: int = 0  # orders the courier scheduled more than once
    peak_account_concurrency: int = 0
    peak_delivery_concurrency: int = 0
    throttles: Counter[str] = field(default_factory=Counter)  # by function role
    courier_calls: int = 0
    courier_429s: int = 0
    parked: int = 0  # circuit breaker: calls refused by the open circuit, orders put on the retry queue
    still_parked: int = 0  # circuit breaker: orders on the retry queue at HORIZON_AFTER_LOAD
    circuit_opened: int = 0  # circuit breaker: transitions to OPEN
    account_limit: int = 0  # the account's concurrency limit the topology ran under
    delivery_invocations: int = 0
    delivery_errors: int = 0
    lowest_delivery_success: float | None = None  # lowest per-minute share of invocations succeeding
    last_delivery_after_load: float = 0.0  # seconds from the end of the load to the last delivery
    # the emulator's work second by second (second of the run -> count): Lambda invocations of any
    # function, and requests refused by a limit (courier 429s, Lambda throttles); what
    # report.run_order prices in CPU to decide whether both topologies fit on the machine at once
    invocations_per_second: Counter[int] = field(default_factory=Counter)
    refusals_per_second: Counter[int] = field(default_factory=Counter)

    @property
    def actual_success(self) -> float | None:
        """The article's measure after every retry has played out: delivered over accepted."""
        return self.delivered / self.accepted if self.accepted else None


@dataclass(frozen=True)
class Simulation:
    seed: int
    load_seconds: float
    topologies: dict[str, SimulatedTopology]  # catalogue name -> its run, in the catalogue's order

    def __getitem__(self, name: str) -> SimulatedTopology:
        return self.topologies[name]

    @property
    def no_flow_control(self) -> SimulatedTopology:
        """The comparison's storm (`[comparison].storm`)."""
        return self.topologies[catalogue().storm]

    @property
    def flow_control(self) -> SimulatedTopology:
        """The comparison's remedy (`[comparison].remedy`)."""
        return self.topologies[catalogue().remedy]


class _Breaker:
    """The delivery function's circuit breaker as lab_breaker runs it: one circuit shared by every
    environment of the account (a DynamoDB item).

    CLOSED counts consecutive failed courier calls (a success resets the count); the call that
    reaches the failure threshold opens the circuit and is itself refused (pybreaker raises
    CircuitBreakerError on the trip). OPEN refuses every call until the timeout has passed; the
    first call after it moves to HALF_OPEN and is the probe. HALF_OPEN lets one probe at a time
    through (a lease held while the call runs) and refuses the rest; a failed probe opens the
    circuit again, `success_threshold` successful probes close it. A refused call is parked: the
    delivery function puts the order on the retry queue with a delay that grows with each park
    (lab_breaker.park_delay: the timeout up to the timeout doubled per park, jittered) and returns.

    One approximation: the circuit learns a call's outcome when the call starts (failures answer in
    50 ms, so only a success's 0-2 s is skipped), except the probe lease, held for the whole call.
    """

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self.state = "closed"
        self.failures = 0
        self.successes = 0
        self.opened_at = 0.0
        self.probe_until = 0.0

    def refuses(self, now: float) -> bool:
        """Whether a call now meets CircuitBreakerError at once (no change to the circuit)."""
        if self.state == "open":
            return now < self.opened_at + self.settings.reset_timeout_s
        return self.state == "half-open" and now < self.probe_until

    def admit(self, now: float) -> bool:
        """Whether a call may go to the courier now (False: CircuitBreakerError, the order parks);
        a half-open admission takes the probe lease until `record` knows when the call answers."""
        if self.refuses(now):
            return False
        if self.state == "open":
            self.state, self.successes = "half-open", 0
        if self.state == "half-open":
            self.probe_until = float("inf")
        return True

    def record(self, now: float, ok: bool, seconds: float, result: SimulatedTopology) -> bool:
        """The call's outcome; False when it trips the circuit (the call then parks, not retries)."""
        if self.state == "half-open":
            self.probe_until = now + seconds
            if not ok:
                self._open(now, result)
                return False
            self.successes += 1
            if self.successes >= self.settings.success_threshold:
                self.state, self.failures = "closed", 0
            return True
        if ok:
            self.failures = 0
            return True
        self.failures += 1
        if self.failures >= self.settings.failure_threshold:
            self._open(now, result)
            return False
        return True

    def _open(self, now: float, result: SimulatedTopology) -> None:
        self.state, self.opened_at, self.successes = "open", now, 0
        result.circuit_opened += 1


class _Account:
    """One topology's account: its concurrency pool, its courier's token bucket, its outcomes."""

    def __init__(self, sim: _Run, result: SimulatedTopology, topology: Topology) -> None:
        self.sim = sim
        self.result = result
        # the topology's own limit: the deployed limit (its setting) times its factor
        self.limit = topology.account_limit(sim.inputs.account_limit)
        result.account_limit = self.limit
        # reserved concurrency: the delivery function's own pool, taken out of the account's
        self.reserved = topology.delivery.reserved_concurrency
        self.breaker = _Breaker(BREAKER) if topology.delivery.breaker else None
        self.running = 0
        self.unreserved_running = 0
        self.delivery_running = 0
        self.tokens = float(sim.inputs.courier_burst)
        self.refilled_at = 0.0
        # an API destination: events waiting for their turn at the destination's pace (order, retries,
        # first seen), the pacing bucket (one token, refilled at the rate), a pump already planned
        self.destination_waiting: deque[tuple[int, int, float]] = deque()
        self.destination_tokens = 1.0
        self.destination_refilled_at = 0.0
        self.destination_pump_at: float | None = None
        self.scheduled: Counter[int] = Counter()  # order -> courier successes
        self.dead: set[int] = set()  # dead-lettered orders
        self.minutes: dict[int, list[int]] = {}  # minute -> [ok, failed] invocation outcomes

    def full(self, role: str) -> bool:
        """No concurrency left for `role`: the reserved pool (delivery, when reserved) or the rest."""
        if role == "delivery" and self.reserved > 0:
            return self.delivery_running >= self.reserved
        return self.unreserved_running >= self.limit - self.reserved

    def acquire(self, role: str) -> bool:
        second = int(self.sim.now)
        in_reserve = role == "delivery" and self.reserved > 0
        if self.full(role):
            self.result.throttles[role] += 1
            self.result.refusals_per_second[second] += 1
            return False
        self.result.invocations_per_second[second] += 1
        self.running += 1
        if not in_reserve:
            self.unreserved_running += 1
        self.result.peak_account_concurrency = max(self.result.peak_account_concurrency, self.running)
        if role == "delivery":
            self.delivery_running += 1
            self.result.peak_delivery_concurrency = max(self.result.peak_delivery_concurrency, self.delivery_running)
        return True

    def release(self, role: str) -> None:
        self.running -= 1
        if role == "delivery":
            self.delivery_running -= 1
        if not (role == "delivery" and self.reserved > 0):
            self.unreserved_running -= 1

    def admitted_by_usage_plan(self, now: float) -> bool:
        i = self.sim.inputs
        self.tokens = min(float(i.courier_burst), self.tokens + (now - self.refilled_at) * i.courier_rate)
        self.refilled_at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def outcome(self, now: float, ok: bool, count: int = 1) -> None:
        bucket = self.minutes.setdefault(int(now // 60), [0, 0])
        bucket[0 if ok else 1] += count
        if not ok:
            self.result.delivery_errors += count


class _Run:
    def __init__(self, inputs: CapacityInputs, seed: int) -> None:
        self.inputs = inputs
        self.random = random.Random(seed)
        self.events: list[tuple[float, int, str, tuple]] = []
        self.sequence = 0
        # SQS (sqs-esm wiring): visible message ids, receives per message
        self.visible: deque[int] = deque()
        self.receives: Counter[int] = Counter()
        # the circuit breaker's retry queue: parked orders visible again, and those still delayed
        # (whole second they become visible -> orders), one event per second however many park
        self.parked: deque[int] = deque()
        self.parked_due: dict[int, list[int]] = {}
        self.parks: Counter[int] = Counter()  # times each order was parked: its next delay grows
        self.retry_running = 0  # invocations of the retry queue's mapping (capped like flow control's)
        self.orders = 0
        self.now = 0.0  # the time of the event being handled
        self.last_direct_delivery = 0.0  # API destination: when the courier's last success answered

    def at(self, when: float, kind: str, *data: object) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (when, self.sequence, kind, data))

    # --- the order's path -------------------------------------------------------------------
    def arrive(self, now: float, account: _Account, order: int, wiring: Wiring) -> None:
        if not account.acquire("notification"):
            return  # API Gateway answers the throttle; the order never reaches a START line
        account.result.accepted += 1
        done = now + NOTIFY_SECONDS
        self.at(done, "release", account, "notification")
        WIRING_ENTRY[wiring](self, done, account, order)

    def invoke_async(self, now: float, account: _Account, order: int, failures: int, throttles: int) -> None:
        if not account.acquire("delivery"):
            delay = min(2.0**throttles, MAX_THROTTLE_DELAY)
            self.at(now + delay, "invoke_async", account, order, failures, throttles + 1)
            return
        self.start_invocation(now, account, order, ("async", failures))

    def start_invocation(self, now: float, account: _Account, order: int, source: tuple) -> None:
        account.result.delivery_invocations += 1
        self.at(now, "attempt", account, order, source, now, 1)

    def call_courier(self, now: float, account: _Account) -> tuple[bool, float]:
        """One request to the courier's API, whoever sends it: (answered 2xx, seconds it took).
        Refused by the usage plan (429) or by the courier's own throttled function (a 5xx)."""
        i = self.inputs
        account.result.courier_calls += 1
        if not account.admitted_by_usage_plan(now):
            account.result.courier_429s += 1
            account.result.refusals_per_second[int(now)] += 1
            return False, FAILED_CALL_SECONDS
        if not account.acquire("courier"):
            return False, FAILED_CALL_SECONDS
        ok = self.random.random() >= i.courier_failure_rate
        seconds = self.random.uniform(i.courier_latency_min, i.courier_latency_max) if ok else FAILED_CALL_SECONDS
        self.at(now + seconds, "release", account, "courier")
        return ok, seconds

    def attempt(self, now: float, account: _Account, order: int, source: tuple, started: float, number: int) -> None:
        i = self.inputs
        deadline = started + i.function_timeout
        if account.breaker is not None and not account.breaker.admit(now):
            self.park(now, account, order, source)
            return
        ok, seconds = self.call_courier(now, account)
        if ok:
            # the courier schedules the order even if the caller is killed before the answer
            account.scheduled[order] += 1
        if account.breaker is not None and not account.breaker.record(now, ok, seconds, account.result):
            self.park(now + seconds, account, order, source)  # the call that trips the circuit parks
            return
        if now + seconds >= deadline:
            self.at(deadline, "end", account, order, source, False)
        elif ok or number >= i.retry.attempts:
            self.at(now + seconds, "end", account, order, source, ok)
        else:
            wait = i.retry.wait_fixed + self.random.uniform(i.retry.wait_random_min, i.retry.wait_random_max)
            if now + seconds + wait >= deadline:
                self.at(deadline, "end", account, order, source, False)
            else:
                self.at(now + seconds + wait, "attempt", account, order, source, started, number + 1)

    def release(self, now: float, account: _Account, role: str) -> None:
        account.release(role)
        if self.parked:
            self.poll(now, account)  # parked orders waiting for concurrency: the retry queue's mapping takes them

    def end(self, now: float, account: _Account, order: int, source: tuple, ok: bool | str) -> None:
        account.release("delivery")
        account.outcome(now, ok)
        kind = source[0]
        if kind == "async":
            if self.parked:
                self.poll(now, account)
            failures = source[1]
            if not ok:
                if failures + 1 > self.inputs.async_retries:
                    account.dead.add(order)  # the on-failure destination
                else:
                    delay = (failures + 1) * ASYNC_RETRY_BASE_DELAY
                    self.at(now + delay, "invoke_async", account, order, failures + 1, 0)
        elif kind == "retry":
            self.retry_running -= 1
            if not ok:
                self.retry_later(source[1] + BREAKER_RETRY_VISIBILITY_TIMEOUT, account, [order])
            self.poll(now, account)
        else:
            received_at = source[1]
            if not ok:
                self.at(received_at + self.inputs.queue_visibility_timeout, "visible", account, order)
            self.poll(now, account)

    # --- the circuit breaker's fallback: the retry queue, mapped back to the delivery function ---
    def park(self, now: float, account: _Account, order: int, source: tuple) -> None:
        """CircuitBreakerError: the order goes on the retry queue, delayed by the breaker's timeout,
        and the invocation returns normally (Lambda counts a success; no async retry)."""
        account.result.parked += 1
        self.at(now, "end", account, order, source, PARKED)
        self.retry_later(now + self.next_park_delay(order), account, [order])

    def next_park_delay(self, order: int) -> int:
        """The delivery function's own delay (lab_breaker.park_delay): longer at each park."""
        delay = park_delay(self.parks[order], BREAKER.reset_timeout_s, self.random)
        self.parks[order] += 1
        return delay

    def retry_later(self, when: float, account: _Account, orders: list[int]) -> None:
        """The orders become visible on the retry queue at `when`'s next whole second."""
        due = math.ceil(when)
        if due not in self.parked_due:
            self.parked_due[due] = []
            self.at(float(due), "retry_visible", account, due)
        self.parked_due[due].extend(orders)

    def retry_visible(self, now: float, account: _Account, due: int) -> None:
        self.parked.extend(self.parked_due.pop(due))
        self.poll(now, account)

    # --- sqs-esm: the queue and the event source mapping --------------------------------------
    def enqueue(self, now: float, account: _Account, order: int) -> None:
        self.visible.append(order)
        self.poll(now, account)

    def make_visible(self, now: float, account: _Account, order: int) -> None:
        if self.receives[order] >= self.inputs.max_receive_count:
            account.dead.add(order)  # moved to the DLQ on its next receive
            return
        self.visible.append(order)
        self.poll(now, account)

    def poll(self, now: float, account: _Account) -> None:
        while self.visible and account.delivery_running < self.inputs.esm_max_concurrency:
            if not account.acquire("delivery"):
                return  # throttled receives go back to the queue; the next end polls again
            order = self.visible.popleft()
            self.receives[order] += 1
            self.start_invocation(now, account, order, ("sqs", now))
        # the retry queue's mapping: at most BREAKER_RETRY_MAX_CONCURRENCY invocations at once
        while self.parked and account.breaker is not None and self.retry_running < BREAKER_RETRY_MAX_CONCURRENCY:
            if account.breaker.refuses(now):
                self.park_all(now, account)
                return
            if not account.acquire("delivery"):
                return
            # the invocation's first courier call is made now, before the next message is taken,
            # so the call that trips the circuit sends the rest of the queue to `park_all`
            account.result.delivery_invocations += 1
            self.retry_running += 1
            self.attempt(now, account, self.parked.popleft(), ("retry", now), now, 1)

    def park_all(self, now: float, account: _Account) -> None:
        """The circuit is open: each visible parked order's invocation parks it again at once, no
        courier call, taking no time, so one free environment serves them all. Played out in one
        step, each order coming back after its own delay."""
        if account.full("delivery") or self.retry_running >= BREAKER_RETRY_MAX_CONCURRENCY:
            return  # the next invocation's end polls again
        count = len(self.parked)
        r = account.result
        r.delivery_invocations += count
        r.parked += count
        r.invocations_per_second[int(now)] += count
        account.outcome(now, True, count)
        for order in self.parked:
            self.retry_later(now + self.next_park_delay(order), account, [order])
        self.parked.clear()

    # --- API destination: EventBridge calls the courier itself, paced, retrying ------------------
    def destination_ready(self, now: float, account: _Account, order: int, retries: int, first_seen: float) -> None:
        account.destination_waiting.append((order, retries, first_seen))
        self.destination_pump(now, account)

    def destination_pump(self, now: float, account: _Account, planned: bool = False) -> None:
        """Send what waits, one request per 1/rate seconds (lab_platform/api_destination: a bucket of
        one token), and plan the next pump while events still wait."""
        if planned:
            account.destination_pump_at = None
        rate = float(COURIER_DESTINATION_RATE)
        account.destination_tokens = min(1.0, account.destination_tokens + (now - account.destination_refilled_at) * rate)
        account.destination_refilled_at = now
        # a refill that lands a hair under one token in floating point still counts as one
        while account.destination_waiting and account.destination_tokens >= 1.0 - 1e-9:
            account.destination_tokens = max(0.0, account.destination_tokens - 1.0)
            self.destination_call(now, account, *account.destination_waiting.popleft())
        if account.destination_waiting and account.destination_pump_at is None:
            account.destination_pump_at = now + (1.0 - account.destination_tokens) / rate
            self.at(account.destination_pump_at, "destination_pump", account, True)

    def destination_call(self, now: float, account: _Account, order: int, retries: int, first_seen: float) -> None:
        ok, seconds = self.call_courier(now, account)
        if ok:
            account.scheduled[order] += 1
            self.last_direct_delivery = max(self.last_direct_delivery, now + seconds)
            return
        # every failure here is retriable (429, 5xx): back-off with jitter within AWS's default policy
        policy = DESTINATION_RETRY_POLICY
        retry_at = now + seconds + backoff(retries + 1, self.random)
        if retries >= policy.max_attempts or retry_at - first_seen > policy.max_age_seconds:
            account.dead.add(order)
            return
        self.at(retry_at, "destination_ready", account, order, retries + 1, first_seen)

    # --- the loop ------------------------------------------------------------------------------
    def run(self, account: _Account, wiring: Wiring) -> None:
        t = 0.0
        carry = 0.0  # fractional rates carried over, so 2.5/s gives 2, 3, 2, 3 ...
        for rate in profile_timeline(self.inputs.phases):
            # `rate` orders in this second, evenly spaced: the load's open arrival model
            carry += rate
            count = int(carry)
            carry -= count
            for k in range(count):
                self.orders += 1
                self.at(t + (k + 0.5) / count, "arrive", account, self.orders, wiring)
            t += 1.0
        handlers = {
            "arrive": self.arrive,
            "invoke_async": self.invoke_async,
            "attempt": self.attempt,
            "end": self.end,
            "enqueue": self.enqueue,
            "visible": self.make_visible,
            "retry_visible": self.retry_visible,
            "release": self.release,
            "destination_ready": self.destination_ready,
            "destination_pump": self.destination_pump,
        }
        last_delivery = 0.0
        while self.events:
            now, _, kind, data = heapq.heappop(self.events)
            if now > t + HORIZON_AFTER_LOAD:
                break
            self.now = now
            if kind == "end" and data[-1] is True:  # a delivery, not a parked order
                last_delivery = max(last_delivery, now)
            handlers[kind](now, *data)
        r = account.result
        r.delivered = len(account.scheduled)
        # as in the report's ledger: an order the courier scheduled is delivered, even if the
        # function was killed before the answer and the event was then dead-lettered
        r.dead_lettered = len(account.dead - set(account.scheduled))
        r.duplicated = sum(1 for n in account.scheduled.values() if n > 1)
        waiting = set(self.parked).union(*self.parked_due.values())
        r.still_parked = len(waiting - set(account.scheduled))
        r.last_delivery_after_load = max(0.0, max(last_delivery, self.last_direct_delivery) - t)
        shares = [ok / (ok + bad) for ok, bad in account.minutes.values() if ok + bad >= MIN_OUTCOMES_PER_MINUTE]
        r.lowest_delivery_success = min(shares) if shares else None


# --- the bus-to-delivery path, one simulation unit per wiring kind (lab_kernel/topologies.toml) --
def _enter_async_invoke(run: _Run, when: float, account: _Account, order: int) -> None:
    """The rule invokes the delivery function asynchronously: Lambda's internal queue, retries."""
    run.at(when, "invoke_async", account, order, 0, 0)


def _enter_sqs_esm(run: _Run, when: float, account: _Account, order: int) -> None:
    """The rule sends to the queue; the event source mapping polls it with maximum concurrency."""
    run.at(when, "enqueue", account, order)


def _enter_api_destination(run: _Run, when: float, account: _Account, order: int) -> None:
    """The rule's target is the API destination: the event waits its turn at the destination's pace."""
    run.at(when, "destination_ready", account, order, 0, when)


WIRING_ENTRY = {ASYNC_INVOKE: _enter_async_invoke, SQS_ESM: _enter_sqs_esm, API_DESTINATION: _enter_api_destination}


def simulate_topology(inputs: CapacityInputs, topology: str | Topology, seed: int = 1) -> SimulatedTopology:
    """One topology (a catalogue name, or an entry of its own) played out by the simulation unit
    of its wiring, with its delivery settings (reserved concurrency, breaker) and its account
    limit factor."""
    entry = catalogue().get(topology) if isinstance(topology, str) else topology
    if entry.wiring not in WIRING_ENTRY:
        raise ValueError(f"no simulation unit for wiring {entry.wiring!r}: known {', '.join(WIRING_ENTRY)}")
    run = _Run(inputs, seed)
    result = SimulatedTopology(entry.name, offered=0)
    run.run(_Account(run, result, entry), entry.wiring)
    result.offered = run.orders
    return result


# Seeds the report plays a profile with, to show the simulation's own spread beside a measurement.
SPREAD_SEEDS = (1, 2, 3, 4, 5)


def simulate_spread(inputs: CapacityInputs, seeds: tuple[int, ...] = SPREAD_SEEDS,
                    topologies: tuple[str, ...] | None = None) -> tuple[Simulation, ...]:
    """The same profile under several seeds (about 0.25 s of CPU per topology and seed for the
    18-minute seed ramp)."""
    return tuple(simulate(inputs, seed, topologies) for seed in seeds)


def simulate(inputs: CapacityInputs, seed: int = 1, topologies: tuple[str, ...] | None = None) -> Simulation:
    """The topologies, each in its own account, as the lab runs them. `topologies=None`: those
    `$TOPOLOGIES` chooses; the comparison pair is always among them (the verdicts of the other
    topologies are judged against the storm)."""
    cat = catalogue()
    chosen = set(cat.pair) | set(selected() if topologies is None else topologies)
    return Simulation(
        seed=seed,
        load_seconds=float(len(profile_timeline(inputs.phases))),
        topologies={name: simulate_topology(inputs, name, seed) for name in cat.names if name in chosen},
    )
