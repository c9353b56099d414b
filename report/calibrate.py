"""What the emulator's work costs on this machine, measured on the lab itself just before a run.

`report.run_order` prices the simulated run's work in CPU; the prices come from here, about half
a minute before the load:

1. idle: the machine's busy CPU over a few seconds with the lab doing nothing, in cores;
2. per Lambda invocation: a few dozen orders through the no-flow-control topology at a steady
   rate below the courier's limit (no storm), until its invocations stop; the machine's busy CPU
   above idle over that time, divided by the invocations its platform counted (notify, delivery,
   the courier's function);
3. per refused request: the courier's API called with its key from many threads for a few
   seconds, far over its usage plan, so nearly every call is a 429; busy CPU above idle, less the
   few admitted calls' invocations at the price above, divided by the 429s.

Why here and not a figure recorded by `make bench`: the price depends on this machine now (its
cores' speed, whatever else runs on it, the lab's own settings), and a recorded figure from
another day or machine would decide the run order on someone else's numbers. The whole machine's
CPU is read (/proc/stat), not the lab's processes alone: the run needs the load generator and the
kernel too, and shares the cores with everything else that runs.

The calibration's orders carry ids starting `calibration-`, outside any run's id; its counters
move before the run's baseline is taken.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests

from bootstrap.topology import API_KEY_SECRET
from report.aws_state import client
from report.endpoints import Endpoints, Topology
from report.figures import scrape
from report.run_order import UnitCost, available_cores

PROC_STAT = Path("/proc/stat")
IDLE_SECONDS = 4.0
ORDERS = 40
ORDERS_PER_SECOND = 5.0  # half the courier's usage plan: no 429, no throttle
SETTLE_SECONDS = 4.0  # invocations unchanged this long: the orders' work is done
SETTLE_TIMEOUT = 60.0
STORM_SECONDS = 4.0
STORM_THREADS = 16


class CalibrationError(RuntimeError):
    """The lab did not answer well enough to price its work; the message says what happened."""


def busy_seconds(stat: str | None = None) -> float:
    """The machine's busy CPU seconds so far: every state of /proc/stat's `cpu` line but idle and
    iowait (user, nice, system, irq, softirq, steal)."""
    text = stat if stat is not None else PROC_STAT.read_text()
    first = text.splitlines()[0].split()
    if not first or first[0] != "cpu":
        raise CalibrationError("/proc/stat has no `cpu` line: the machine's CPU cannot be read here")
    values = [int(v) for v in first[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = values + [0] * (8 - len(values))
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _counter(url: str, name: str, account: str) -> float:
    samples = scrape(url).get(name, {})
    return sum(v for labels, v in samples.items() if dict(labels).get("account") == account)


def _post_orders(notify_url: str, count: int, rate: float) -> Counter:
    """One order every 1/rate seconds, each on its own thread (a slow answer does not delay the next)."""
    statuses: Counter = Counter()
    lock = threading.Lock()

    def one(n: int) -> None:
        body = {"order_id": f"calibration-{uuid.uuid4().hex[:8]}-{n}", "item": "widget", "customer": "calibration"}
        try:
            status = requests.post(notify_url, json=body, timeout=30).status_code
        except requests.RequestException:
            status = 0
        with lock:
            statuses[status] += 1

    threads = []
    began = time.monotonic()
    for n in range(count):
        delay = began + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=one, args=(n,), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(60)
    return statuses


def _storm(courier_url: str, api_key: str, seconds: float) -> Counter:
    statuses: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    body = json.dumps({"order_id": "calibration-storm"})
    headers = {"x-api-key": api_key, "x-correlation-id": "calibration-storm", "Content-Type": "application/json"}

    def hammer() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                try:
                    status = session.post(courier_url, data=body, headers=headers, timeout=30).status_code
                except requests.RequestException:
                    status = 0
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(STORM_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return statuses


def _settle(url: str, account: str) -> float:
    """Waits until the account's invocation counter stops moving; its value then."""
    last, changed = _counter(url, "lab_lambda_invocations_total", account), time.monotonic()
    deadline = changed + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _counter(url, "lab_lambda_invocations_total", account)
        if now != last:
            last, changed = now, time.monotonic()
        elif time.monotonic() - changed >= SETTLE_SECONDS:
            break
    return last


def measure(endpoints: Endpoints, topology: Topology, say: Callable[[str], None] = print) -> UnitCost:
    """The three prices, measured now on `topology` (the no-flow-control one: its deliveries follow
    each order at once)."""
    url = topology.localstack_url or endpoints.localstack_url
    try:
        t0, b0 = time.monotonic(), busy_seconds()
        time.sleep(IDLE_SECONDS)
        idle = (busy_seconds() - b0) / (time.monotonic() - t0)

        say(f"calibration: {ORDERS} orders at {ORDERS_PER_SECOND:g}/s through {topology.name} (no storm)")
        inv0, t0, b0 = _counter(url, "lab_lambda_invocations_total", topology.account), time.monotonic(), busy_seconds()
        answers = _post_orders(topology.notify_url, ORDERS, ORDERS_PER_SECOND)
        inv1 = _settle(url, topology.account)
        spent = busy_seconds() - b0 - idle * (time.monotonic() - t0)
        invocations = inv1 - inv0
        if answers.get(200, 0) == 0 or invocations <= 0:
            raise CalibrationError(f"no order went through {topology.notify_url} (answers {dict(answers)})")
        per_invocation = max(spent, 0.0) / invocations

        say(f"calibration: the courier's API called from {STORM_THREADS} threads for {STORM_SECONDS:g} s (429s)")
        api_key = client(endpoints, topology, "secretsmanager").get_secret_value(SecretId=API_KEY_SECRET)["SecretString"]
        r0 = _counter(url, "lab_apigateway_throttled_total", topology.account)
        inv0, t0, b0 = _counter(url, "lab_lambda_invocations_total", topology.account), time.monotonic(), busy_seconds()
        statuses = _storm(topology.courier_url, api_key, STORM_SECONDS)
        inv1 = _settle(url, topology.account)
        spent = busy_seconds() - b0 - idle * (time.monotonic() - t0) - (inv1 - inv0) * per_invocation
        refused = _counter(url, "lab_apigateway_throttled_total", topology.account) - r0
        if refused <= 0:
            raise CalibrationError(f"the courier's API refused nothing in the storm (answers {dict(statuses)})")
        per_refusal = max(spent, 0.0) / refused
    except (requests.RequestException, OSError) as error:
        raise CalibrationError(f"the lab did not answer ({error.__class__.__name__}: {error})") from None
    except Exception as error:  # noqa: BLE001 - botocore's errors: any failure is "not measured"
        if isinstance(error, CalibrationError):
            raise
        raise CalibrationError(f"{error.__class__.__name__}: {error}") from None
    return UnitCost(
        ms_per_invocation=per_invocation * 1000,
        ms_per_refusal=per_refusal * 1000,
        idle_cores=idle,
        source=(f"measured now: {invocations:.0f} invocations of {ORDERS} orders, {refused:.0f} courier 429s, "
                f"the machine's busy CPU above {idle:.2f} idle cores"),
    )


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def machine_cores() -> float:
    """The cores this process may run on: its CPU affinity, capped by its cgroup's quota."""
    try:
        quota = CGROUP_CPU_MAX.read_text() if CGROUP_CPU_MAX.exists() else None
    except OSError:
        quota = None
    return available_cores(len(os.sched_getaffinity(0)), quota)
