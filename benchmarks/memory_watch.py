"""The machine's memory and each execution environment's PSS while a load runs (issue #15, point 6).

Execution environments are the children the process executor forks from a function's zygote
(`lab_platform/executor/zygote.py`); PSS (proportional set size) charges pages shared with the
zygote to every sharer in part, so the sum of PSS is what the environments really take. Sampled
every `--every` seconds; printed at the peak count of environments, never asserted:

    .venv/bin/python -m benchmarks.memory_watch --minutes 30
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from lab_platform.executor.environments import environments


def pss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def machine_used_mb() -> float:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kb = lambda key: int(info[key].split()[0])  # noqa: E731
    return (kb("MemTotal") - kb("MemAvailable")) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args(argv)
    began = time.monotonic()
    peak: tuple[int, list[int], float] = (0, [], 0.0)
    most_used = 0.0
    while time.monotonic() - began < args.minutes * 60:
        pids = [e.pid for e in environments()]
        used = machine_used_mb()
        most_used = max(most_used, used)
        if len(pids) > peak[0]:
            sizes = [v for v in (pss_kb(p) for p in pids) if v is not None]
            peak = (len(pids), sizes, used)
            print(f"[{time.monotonic() - began:5.0f} s] {len(pids)} environments, PSS mean "
                  f"{statistics.mean(sizes) / 1024 if sizes else 0:.2f} MB, machine {used / 1024:.1f} GB used", flush=True)
        time.sleep(args.every)
    count, sizes, used = peak
    if sizes:
        print(f"peak: {count} environments, PSS per environment mean {statistics.mean(sizes) / 1024:.2f} MB, "
              f"max {max(sizes) / 1024:.2f} MB, sum {sum(sizes) / 1024:.0f} MB; machine {used / 1024:.1f} GB used "
              f"then, {most_used / 1024:.1f} GB at most")
    return 0


if __name__ == "__main__":
    sys.exit(main())
