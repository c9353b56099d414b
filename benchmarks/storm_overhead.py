"""What the emulator adds inside the storm (issue #15, point 3), measured beside a running load.

The probe of `report.overhead` (an account of its own: a trivial function, invoked directly and
through a REST API with a Lambda proxy integration) measures its idle figure first, then samples
twice a second while the load runs; per minute against idle, printed, never asserted.
`make experiment` runs the same probe and puts it in the report; this runs it beside `make load`:

    .venv/bin/python -m benchmarks.storm_overhead --url http://127.0.0.1:4566 --minutes 20
"""

from __future__ import annotations

import argparse
import sys
import time

from report.overhead import Probe, summarise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:4566", help="the LocalStack to probe")
    parser.add_argument("--minutes", type=float, default=20.0, help="how long to probe after the baseline")
    args = parser.parse_args(argv)
    probe = Probe(args.url).provision()
    try:
        idle = probe.idle()
        started = time.time()
        probe.start()
        time.sleep(args.minutes * 60)
        result = summarise(idle, probe.stop(), started)
    finally:
        probe.teardown()
    if result is None:
        print("no idle sample answered: is LocalStack up?")
        return 1
    print(f"idle: Lambda invoke p50 {result.idle_invoke_p50 * 1000:.1f} ms, "
          f"API Gateway p50 {result.idle_api_p50 * 1000:.1f} ms; {result.failed} failed probes")
    print("minute  invoke p50  p95 (x idle)        API Gateway p50  p95 (x idle)")
    for m in result.minutes:
        print(f"{m.minute:6d}  {m.invoke_p50 * 1000:7.1f} ms {m.invoke_p95 * 1000:7.1f} ms "
              f"({m.invoke_p50 / result.idle_invoke_p50:4.1f}x)   {m.api_p50 * 1000:7.1f} ms "
              f"{m.api_p95 * 1000:7.1f} ms ({m.api_p50 / result.idle_api_p50:4.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
