"""What the emulator's work costs on this machine, measured on the lab itself just before a run.

`report.run_order` prices the simulated run's work in CPU; the prices come from here, about half
a minute before the load:

1. idle: a few seconds with the lab doing nothing: the lab's own CPU (LocalStack's pollers and
   flushers), and the cores other work on the machine keeps busy;
2. per Lambda invocation: a few orders to start the environments, then a few dozen through the
   storm topology (asynchronous wiring) at a steady rate below the courier's limit (no storm), until its
   invocations stop; the lab's CPU above
   idle over that time, divided by the invocations its platform counted (notify, delivery, the
   courier's function);
3. per refused request: the courier's API called with its key from many threads for a few
   seconds, far over its usage plan, so nearly every call is a 429; the lab's CPU above idle, less
   the few admitted calls' invocations at the price above, divided by the 429s; plus what a
   courier attempt costs the delivery function's environments (their CPU per attempt in step 2),
   since in the storm each 429 is one of its attempts, with its log lines and its metric.

"The lab's CPU" is read from its processes: each LocalStack, found by the port it listens on,
with everything under it (the function environments), plus this process, which sends the
calibration's requests as the load generator sends the run's. Where no LocalStack process can be
seen (compose mode: the port belongs to Docker's proxy) the whole machine's busy CPU (/proc/stat)
stands for it, and other work on the machine then counts as the lab's idle.

Why here and not a figure recorded by `make bench`: the price depends on this machine now (its
cores' speed, their contention, the lab's own settings), and a recorded figure from another day
or machine would decide the run order on someone else's numbers; what other work keeps the cores
busy is only known now.

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

import psutil
import requests

from bootstrap.topology import API_KEY_SECRET
from report.aws_state import client
from lab_kernel.endpoints import Endpoints, TopologyEndpoints
from report.figures import scrape
from report.run_order import UnitCost, available_cores

PROC_STAT = Path("/proc/stat")
IDLE_SECONDS = 4.0
WARM_ORDERS = 10
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
    # no x-correlation-id: the courier records no delivery for the few calls its usage plan admits,
    # so the courier's table holds only real orders (a workshop's `make story` picks one from it)
    headers = {"x-api-key": api_key, "Content-Type": "application/json"}

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


class LabCpu:
    """CPU seconds the lab has used so far: its LocalStacks and every process under them, and this
    process; each process's last reading is kept, so one that exits keeps what it used."""

    def __init__(self, urls: list[str]) -> None:
        self.roots = [p for p in (_listener(url) for url in dict.fromkeys(urls)) if p is not None]
        self.seen: dict[int, float] = {}
        self.function: dict[int, str] = {}  # pid -> the function an execution environment runs

    @property
    def found(self) -> bool:
        return bool(self.roots)

    def seconds(self) -> float:
        for root in self.roots:
            try:
                family = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in family:
                try:
                    times = process.cpu_times()
                    if process.pid not in self.function:
                        self.function[process.pid] = process.environ().get("AWS_LAMBDA_FUNCTION_NAME", "")
                except psutil.Error:
                    continue
                self.seen[process.pid] = times.user + times.system
        own = os.times()
        return sum(self.seen.values()) + own.user + own.system

    def function_seconds(self, name: str) -> float:
        """CPU seconds of the execution environments of function `name`, as last read."""
        return sum(cpu for pid, cpu in self.seen.items() if self.function.get(pid) == name)


def _listener(url: str) -> psutil.Process | None:
    """The process listening on the URL's port on this machine, if it is a LocalStack (Python)."""
    port = int(url.rstrip("/").rsplit(":", 1)[-1]) if url.rstrip("/").rsplit(":", 1)[-1].isdigit() else None
    if port is None:
        return None
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                process = psutil.Process(conn.pid)
                return process if "python" in process.name().lower() else None
    except (psutil.Error, OSError):
        return None
    return None


def measure(endpoints: Endpoints, topology: TopologyEndpoints, say: Callable[[str], None] = print) -> UnitCost:
    """The prices, measured now on `topology` (the storm one, asynchronous: its deliveries follow
    each order at once)."""
    url = topology.localstack_url or endpoints.localstack_url
    try:
        lab = LabCpu(endpoints.localstack_urls)
        # without a LocalStack process in sight, the whole machine is the lab
        cpu = lab.seconds if lab.found else busy_seconds
        t0, m0, c0 = time.monotonic(), busy_seconds(), cpu()
        time.sleep(IDLE_SECONDS)
        elapsed = time.monotonic() - t0
        idle = (cpu() - c0) / elapsed
        elsewhere = max(0.0, (busy_seconds() - m0) / elapsed - idle) if lab.found else 0.0

        # environments started first: a cold start is not the price of an invocation (measured:
        # 17.5 ms of the delivery function's CPU per courier attempt with them, 3.7 without)
        say(f"calibration: {WARM_ORDERS} orders to start the environments, then {ORDERS} at "
            f"{ORDERS_PER_SECOND:g}/s through {topology.name} (no storm)")
        _post_orders(topology.notify_url, WARM_ORDERS, ORDERS_PER_SECOND)
        _settle(url, topology.account)
        delivery = topology.functions["delivery"]
        inv0, t0, c0 = _counter(url, "lab_lambda_invocations_total", topology.account), time.monotonic(), cpu()
        d0, a0 = lab.function_seconds(delivery), _counter(url, "emf_delivery_attempts_total", topology.account)
        answers = _post_orders(topology.notify_url, ORDERS, ORDERS_PER_SECOND)
        inv1 = _settle(url, topology.account)
        spent = cpu() - c0 - idle * (time.monotonic() - t0)
        invocations = inv1 - inv0
        if answers.get(200, 0) == 0 or invocations <= 0:
            raise CalibrationError(f"no order went through {topology.notify_url} (answers {dict(answers)})")
        per_invocation = max(spent, 0.0) / invocations
        # In the storm a 429 is also the delivery function's own attempt: its call, its log lines,
        # its metric. Its environments' CPU per courier attempt here prices that side.
        attempts = _counter(url, "emf_delivery_attempts_total", topology.account) - a0
        per_attempt = (lab.function_seconds(delivery) - d0) / attempts if attempts > 0 and lab.found else 0.0

        say(f"calibration: the courier's API called from {STORM_THREADS} threads for {STORM_SECONDS:g} s (429s)")
        api_key = client(endpoints, topology, "secretsmanager").get_secret_value(SecretId=API_KEY_SECRET)["SecretString"]
        r0 = _counter(url, "lab_apigateway_throttled_total", topology.account)
        inv0, t0, c0 = _counter(url, "lab_lambda_invocations_total", topology.account), time.monotonic(), cpu()
        statuses = _storm(topology.courier_url, api_key, STORM_SECONDS)
        inv1 = _settle(url, topology.account)
        spent = cpu() - c0 - idle * (time.monotonic() - t0) - (inv1 - inv0) * per_invocation
        refused = _counter(url, "lab_apigateway_throttled_total", topology.account) - r0
        if refused <= 0:
            raise CalibrationError(f"the courier's API refused nothing in the storm (answers {dict(statuses)})")
        per_gateway_refusal = max(spent, 0.0) / refused
        per_refusal = per_gateway_refusal + per_attempt
    except (requests.RequestException, OSError) as error:
        raise CalibrationError(f"the lab did not answer ({error.__class__.__name__}: {error})") from None
    except CalibrationError:
        raise
    except Exception as error:  # noqa: BLE001 - botocore's errors: any failure is "not measured"
        raise CalibrationError(f"{error.__class__.__name__}: {error}") from None
    whose = (f"the CPU of the lab's {len(lab.roots)} LocalStack process(es) and everything under them, and of the "
             "calibration's client" if lab.found else "the machine's busy CPU (no LocalStack process in sight)")
    return UnitCost(
        ms_per_invocation=per_invocation * 1000,
        ms_per_refusal=per_refusal * 1000,
        idle_cores=idle,
        busy_elsewhere=elsewhere,
        source=(f"measured now: {invocations:.0f} invocations of {ORDERS} orders, {refused:.0f} courier 429s at "
                f"{per_gateway_refusal * 1000:.1f} ms each in API Gateway and the client, plus the delivery "
                f"function's {per_attempt * 1000:.1f} ms per courier attempt; {whose}"),
    )


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def machine_cores() -> float:
    """The cores this process may run on: its CPU affinity, capped by its cgroup's quota."""
    try:
        quota = CGROUP_CPU_MAX.read_text() if CGROUP_CPU_MAX.exists() else None
    except OSError:
        quota = None
    return available_cores(len(os.sched_getaffinity(0)), quota)
