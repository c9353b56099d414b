"""`make bench`: every benchmark of the lab, one after the other; figures printed, never asserted.

    .venv/bin/python -m benchmarks [--quick]

Each benchmark starts its own LocalStack on a free port (a running lab is not touched).
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks import eventbridge_throughput, executor, order_cost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples, no 800-environment run")
    args = parser.parse_args()
    for title, run in (
        ("process runtime executor (issue #3)",
         lambda: executor.main(["--quick", "--max-envs", "0"] if args.quick else [])),
        ("EventBridge -> Lambda throughput (issue #4)",
         lambda: eventbridge_throughput.main(["--events", "500"] if args.quick else [])),
        ("CPU per order at a steady 5 orders/s, and per courier 429 (issue #15)",
         lambda: order_cost.main(["--seconds", "20"] if args.quick else [])),
    ):
        print(f"\n=== {title}", flush=True)
        began = time.monotonic()
        run()
        print(f"=== done in {time.monotonic() - began:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
