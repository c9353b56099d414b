"""Benchmark of the process runtime executor: figures printed, never asserted.

    .venv/bin/python -m benchmarks.executor [--max-envs 800] [--quick]

Measures, against a fresh LocalStack 4.14 host process:
- cold start of a function that imports boto3 at load (Init Duration of new environments, and the
  wall time of the first invoke of a new function)
- warm invoke p50/p99 beside a bare LocalStack API call
- unique memory (PSS) per environment
- wall time and CPU of 200 concurrent invocations of a 5 s handler
- the largest number of concurrent environments reached
Goals (issue #3): cold <= 20 ms with boto3 loaded, warm p50 <= 5 ms, <= 5 MB PSS per environment,
200 x 5 s in <= 6 s, 800 concurrent environments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support import localstack as ls
from tests.support.functions import deploy

HANDLER = """
import os, time
import boto3

def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"pid": os.getpid(), "ppid": os.getppid()}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def pss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pids: set[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except OSError:
            pass
    return total


def invoke(lam, name: str, event: dict, log: bool = False):
    kwargs = {"LogType": "Tail"} if log else {}
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event), **kwargs)
    body = json.loads(response["Payload"].read())
    tail = ""
    if log:
        import base64

        tail = base64.b64decode(response.get("LogResult", "")).decode()
    return response, body, tail


def init_ms(log_tail: str) -> float | None:
    match = re.search(r"Init Duration: ([0-9.]+) ms", log_tail)
    return float(match.group(1)) if match else None


def bench_cold(instance, lam, rounds: int) -> None:
    print("cold start (a function that imports boto3 at load)")
    first_invokes, inits = [], []
    for i in range(rounds):
        began = time.perf_counter()
        name = deploy(instance, HANDLER, name=f"cold-{i}")
        deployed = time.perf_counter()
        _, _, tail = invoke(lam, name, {}, log=True)
        first_invokes.append((time.perf_counter() - deployed) * 1000)
        if (value := init_ms(tail)) is not None:
            inits.append(value)
        _ = began
    # more new environments of one function: concurrent invokes force fresh forks
    name = "cold-0"
    with ThreadPoolExecutor(8) as pool:
        for _, _, tail in pool.map(lambda _: invoke(lam, name, {"sleep": 1}, log=True), range(8)):
            if (value := init_ms(tail)) is not None:
                inits.append(value)
    print(f"  Init Duration of new environments: p50 {statistics.median(inits):.1f} ms, "
          f"max {max(inits):.1f} ms (n={len(inits)})")
    print(f"  first invoke of a new function (wall, incl. LocalStack): p50 "
          f"{statistics.median(first_invokes):.1f} ms (n={len(first_invokes)})")


def bench_warm(instance, lam, n: int) -> None:
    name = deploy(instance, HANDLER, name="warm")
    invoke(lam, name, {})
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        invoke(lam, name, {})
        samples.append((time.perf_counter() - began) * 1000)
    bare = []
    sqs = instance.client("sqs")
    for _ in range(n):
        began = time.perf_counter()
        sqs.list_queues()
        bare.append((time.perf_counter() - began) * 1000)
    get_function = []
    for _ in range(n):
        began = time.perf_counter()
        lam.get_function(FunctionName=name)
        get_function.append((time.perf_counter() - began) * 1000)
    print(f"warm invoke: p50 {percentile(samples, 50):.1f} ms, p99 {percentile(samples, 99):.1f} ms (n={n})")
    print(f"  bare LocalStack calls: sqs list_queues p50 {percentile(bare, 50):.1f} ms, "
          f"lambda get_function p50 {percentile(get_function, 50):.1f} ms")


def bench_concurrent(instance, lam, count: int, seconds: float, label: str) -> set[int]:
    name = deploy(instance, HANDLER, name=f"conc-{count}-{int(seconds)}", Timeout=max(30, int(seconds * 6)))
    _, first, _ = invoke(lam, name, {})  # the zygote is warm; every other environment is a fork
    zygote = first["ppid"]
    pids: set[int] = set()
    zygotes: set[int] = set()
    peak_pss: list[int] = []

    def call(_):
        _, body, _ = invoke(lam, name, {"sleep": seconds})
        return body

    stop_sampling = False
    live_peak = 0

    def sample():
        nonlocal live_peak
        while not stop_sampling:
            try:
                live = Path(f"/proc/{zygote}/task/{zygote}/children").read_text().split()
            except OSError:
                live = []
            live_peak = max(live_peak, len(live))
            time.sleep(0.2)

    localstack_cpu = cpu_seconds({instance.pid}) if instance.pid else 0.0
    began = time.perf_counter()
    with ThreadPoolExecutor(count + 1) as pool:
        sampler = pool.submit(sample)
        futures = [pool.submit(call, i) for i in range(count)]
        bodies = []
        for future in futures:
            try:
                bodies.append(future.result())
            except Exception as error:  # noqa: BLE001 - counted, reported
                bodies.append({"error": str(error)})
        wall = time.perf_counter() - began
        stop_sampling = True
        sampler.result()
    ok = [b for b in bodies if "pid" in b]
    pids.update(b["pid"] for b in ok)
    zygotes.update(b["ppid"] for b in ok)
    # environments stay alive (warm) after their invocation: measure their memory now
    for pid in pids:
        if (value := pss_kb(pid)) is not None:
            peak_pss.append(value)
    cpu = cpu_seconds(pids)
    print(f"{label}: {len(ok)}/{count} ok in {wall:.1f} s wall, {len(pids)} distinct environments")
    if peak_pss:
        print(f"  unique memory (PSS) per environment: mean {statistics.mean(peak_pss) / 1024:.2f} MB, "
              f"max {max(peak_pss) / 1024:.2f} MB; zygote PSS "
              f"{sum(filter(None, (pss_kb(z) for z in zygotes))) / 1024:.1f} MB")
    print(f"  CPU used by the environments: {cpu:.1f} s; by LocalStack: "
          f"{(cpu_seconds({instance.pid}) - localstack_cpu) if instance.pid else float('nan'):.1f} s; "
          f"peak live environments seen {live_peak}")
    errors = [b["error"] for b in bodies if "error" in b]
    if errors:
        print(f"  {len(errors)} failed, e.g. {errors[0][:160]}")
    return pids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-envs", type=int, default=800)
    parser.add_argument("--quick", action="store_true", help="smaller samples")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores; LocalStack 4.14.0 host process, process executor")
    instance = ls.start_host({"LAMBDA_LIMITS_CONCURRENT_EXECUTIONS": str(max(1000, args.max_envs + 100))})
    try:
        lam = instance.client("lambda", read_timeout=300)
        bench_cold(instance, lam, rounds=3 if args.quick else 5)
        bench_warm(instance, lam, n=50 if args.quick else 200)
        bench_concurrent(instance, lam, 200, 5, "200 concurrent invocations of a 5 s handler")
        if args.max_envs:
            bench_concurrent(instance, lam, args.max_envs, 10, f"{args.max_envs} concurrent invocations of a 10 s handler")
    finally:
        instance.stop()


if __name__ == "__main__":
    main()
