"""What the emulator adds inside the storm (issue #15, point 3), measured beside a running load.

A probe account (333333333333) on a topology's LocalStack gets a trivial function and a REST API
with a Lambda proxy integration in front of it. The probe calls both twice a second: first on
the idle lab (the baseline), then for as long as the load runs. Its own account has its own
concurrency pool, so on AWS the storm next door would not slow it at all: whatever it measures
above the baseline is the emulator's overhead. Printed per minute, never asserted:

    .venv/bin/python -m benchmarks.storm_overhead --url http://127.0.0.1:4566 --minutes 20

Run it beside `make load` (or `make experiment`), started before the load so the baseline is idle.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import requests

ACCOUNT = "333333333333"
TRIVIAL = """
def handler(event, context):
    return {"statusCode": 200, "body": "ok"}
"""


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def provision(url: str) -> tuple[object, str, str]:
    from tests.integration.platform_support import deploy_function, lambda_proxy_api
    from tests.support import localstack as ls

    instance = ls.LocalStackInstance(url=url)
    function = deploy_function(instance, ACCOUNT, TRIVIAL, MemorySize=128)
    api_url = lambda_proxy_api(instance, function, ACCOUNT)
    return instance.client("lambda", account=ACCOUNT), function, api_url


def sample(lam, function: str, api_url: str) -> tuple[float, float]:
    began = time.perf_counter()
    lam.invoke(FunctionName=function, Payload=b"{}")
    invoke = time.perf_counter() - began
    began = time.perf_counter()
    requests.post(api_url, data="{}", timeout=30).raise_for_status()
    return invoke, time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:4566", help="the LocalStack to probe")
    parser.add_argument("--minutes", type=float, default=20.0, help="how long to probe after the baseline")
    parser.add_argument("--baseline", type=int, default=40, help="idle samples first")
    args = parser.parse_args(argv)
    lam, function, api_url = provision(args.url)
    for _ in range(5):  # warm: one environment, connections open
        sample(lam, function, api_url)
    idle = [sample(lam, function, api_url) for _ in range(args.baseline)]
    idle_invoke = statistics.median(v for v, _ in idle)
    idle_api = statistics.median(a for _, a in idle)
    print(f"idle: Lambda invoke p50 {idle_invoke * 1000:.1f} ms, API Gateway p50 {idle_api * 1000:.1f} ms", flush=True)
    print("minute  invoke p50  p95 (x idle p50)        API Gateway p50  p95 (x idle p50)", flush=True)
    began = time.monotonic()
    minute: list[tuple[float, float]] = []
    minute_start = began
    while time.monotonic() - began < args.minutes * 60:
        try:
            minute.append(sample(lam, function, api_url))
        except (requests.RequestException, Exception) as error:  # noqa: BLE001 - a failed probe is a figure too
            print(f"  probe failed: {error.__class__.__name__}: {error}", flush=True)
        time.sleep(0.5)
        if time.monotonic() - minute_start >= 60 and minute:
            inv = [v for v, _ in minute]
            api = [a for _, a in minute]
            print(f"{(minute_start - began) / 60:6.0f}  {_p(inv, .5) * 1000:7.1f} ms {_p(inv, .95) * 1000:7.1f} ms "
                  f"({_p(inv, .5) / idle_invoke:4.1f}x)   {_p(api, .5) * 1000:7.1f} ms {_p(api, .95) * 1000:7.1f} ms "
                  f"({_p(api, .5) / idle_api:4.1f}x)", flush=True)
            minute, minute_start = [], time.monotonic()
    return 0


if __name__ == "__main__":
    sys.exit(main())
