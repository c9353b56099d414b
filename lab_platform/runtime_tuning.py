"""Optional tuning of the LocalStack process's Python runtime (off unless set).

`LAB_GC_THRESHOLD=gen0,gen1,gen2` sets `gc.set_threshold`. LocalStack keeps every log event,
message and metric in memory; with millions of live objects the cyclic GC's collections of the
older generations dominate a busy process's CPU, and a larger gen0 threshold makes them rarer.
"""

from __future__ import annotations

import gc
import logging
import os

LOG = logging.getLogger(__name__)


def parse_threshold(raw: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ValueError(
            f"LAB_GC_THRESHOLD={raw!r}: expected up to 3 integers, e.g. 50000,20,100"
        ) from None
    if not 1 <= len(values) <= 3 or any(v < 0 for v in values):
        raise ValueError(f"LAB_GC_THRESHOLD={raw!r}: expected up to 3 integers >= 0")
    return values


def apply() -> None:
    raw = os.environ.get("LAB_GC_THRESHOLD", "").strip()
    if raw:
        gc.set_threshold(*parse_threshold(raw))
        LOG.info("lab platform: gc threshold %s", gc.get_threshold())
