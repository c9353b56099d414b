"""EventBridge -> Lambda throughput on LocalStack 4.14 with the lab platform (issue #4, point 7).

2,000 events are put on a custom bus whose rule targets a trivial function, from 4 client
threads (PutEvents with 10 entries per call). Printed, never asserted:
- accepted events/s: events / time until every PutEvents call returned;
- run events/s: events / time until the function had run for every event (from the
  `lab_lambda_invocations_total` counter of `/_lab/metrics`).

    .venv/bin/python -m benchmarks.eventbridge_throughput            # starts its own LocalStack
    .venv/bin/python -m benchmarks.eventbridge_throughput --url URL  # or uses a running one
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

ACCOUNT = "111111111111"
TRIVIAL = """
def handler(event, context):
    return None
"""


def run(url: str | None, events: int, threads: int, extra_env: dict[str, str]) -> dict[str, float]:
    from tests.integration.platform_support import deploy_function, metric
    from tests.support import localstack as ls

    instance = ls.LocalStackInstance(url=url) if url else ls.start_host(extra_env)
    try:
        function = deploy_function(instance, ACCOUNT, TRIVIAL, MemorySize=128)
        lam = instance.client("lambda", account=ACCOUNT)
        events_client = instance.client("events", account=ACCOUNT)
        bus = f"bench-{uuid.uuid4().hex[:6]}"
        events_client.create_event_bus(Name=bus)
        events_client.put_rule(
            Name="to-function", EventBusName=bus, EventPattern=json.dumps({"source": ["bench"]})
        )
        arn = lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
        events_client.put_targets(
            Rule="to-function", EventBusName=bus, Targets=[{"Id": "fn", "Arn": arn}]
        )
        # warm the function (one environment) so the figure is about throughput, not cold start
        lam.invoke(FunctionName=function, Payload=b"{}")
        baseline = metric(instance.url, "lab_lambda_invocations_total", function_name=function)

        entry = {"Source": "bench", "DetailType": "tick", "Detail": "{}", "EventBusName": bus}
        calls = [[entry] * 10 for _ in range(events // 10)]
        clients = [instance.client("events", account=ACCOUNT) for _ in range(threads)]

        def put(index: int) -> int:
            response = clients[index % threads].put_events(Entries=calls[index])
            return response["FailedEntryCount"]

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            failed = sum(pool.map(put, range(len(calls))))
        accepted_at = time.perf_counter() - started

        target = baseline + events
        deadline = time.monotonic() + 600
        ran = baseline
        while ran < target and time.monotonic() < deadline:
            time.sleep(0.1)
            ran = metric(instance.url, "lab_lambda_invocations_total", function_name=function)
        ran_at = time.perf_counter() - started
        return {
            "events": events,
            "failed_entries": failed,
            "accept_seconds": accepted_at,
            "accepted_per_second": events / accepted_at,
            "all_ran_seconds": ran_at,
            "ran": ran - baseline,
            "run_per_second": (ran - baseline) / ran_at,
        }
    finally:
        if not url:
            instance.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running LocalStack with the lab platform (else start one)")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra LocalStack setting when starting one, e.g. LAB_PATCH_EVENTS_LAMBDA_TARGET=0",
    )
    args = parser.parse_args(argv)
    if args.events % 10:
        parser.error("--events must be a multiple of 10 (PutEvents takes 10 entries per call)")
    extra_env = dict(item.split("=", 1) for item in args.env)
    figures = run(args.url, args.events, args.threads, extra_env)
    print(
        f"EventBridge -> Lambda, {figures['events']} events from {args.threads} threads: "
        f"accepted {figures['accepted_per_second']:.0f} events/s ({figures['accept_seconds']:.2f} s, "
        f"{figures['failed_entries']} failed entries); all ran after {figures['all_ran_seconds']:.2f} s "
        f"= {figures['run_per_second']:.0f} events/s end to end ({figures['ran']:.0f} ran)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
