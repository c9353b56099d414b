"""One order's story: every log line of a correlation_id across the three services, in time order.

This is the article's "tell the story" query, printed for a person: time, service, status,
message. Lambda's own lines for the same invocations (a timeout, a crash) are woven in through the
request id Powertools logs, because a timed-out delivery prints no FAILED line of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from report.endpoints import Topology
from report.logs import ROLES, LogLine, fetch_all

_PLATFORM_NOISE = re.compile(r"^(START|END|REPORT|INIT_START|INIT_REPORT) ")
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class StoryError(ValueError):
    pass


def select(lines: Iterable[LogLine], correlation_id: str) -> list[LogLine]:
    """The order's own lines plus Lambda's non-routine lines of the same invocations."""
    lines = list(lines)
    own = [line for line in lines if line.correlation_id == correlation_id]
    request_ids = {line.request_id for line in own if line.request_id}
    extra = [
        line
        for line in lines
        if line.correlation_id is None
        and line.request_id in request_ids
        and not _PLATFORM_NOISE.match(line.message)
    ]
    chosen = own + extra
    chosen.sort(key=lambda line: (line.timestamp_ms, ROLES.index(line.role) if line.role in ROLES else 9))
    return chosen


def format_story(correlation_id: str, lines: Sequence[LogLine], topology: str | None = None) -> str:
    """A fixed-width table a person can read top to bottom, with the gap since the first line."""
    where = f" in {topology}" if topology else ""
    if not lines:
        return f"no log lines for correlation_id {correlation_id}{where}"
    t0 = lines[0].timestamp_ms
    width = max(len(line.service) for line in lines)
    out = [f"story of {correlation_id}{where}: {len(lines)} lines over {(lines[-1].timestamp_ms - t0) / 1000:.1f} s"]
    out.append(f"{'time (UTC)':<23}  {'+s':>7}  {'service':<{width}}  {'status':<9}  {'level':<7}  message")
    for line in lines:
        stamp = line.time.strftime("%Y-%m-%d %H:%M:%S.") + f"{line.time.microsecond // 1000:03d}"
        message = " ".join(line.message.split())  # one line per log line, whatever it held
        out.append(
            f"{stamp:<23}  {(line.timestamp_ms - t0) / 1000:>7.3f}  {line.service:<{width}}  "
            f"{line.status or '-':<9}  {line.level or '-':<7}  {message}"
        )
    statuses = [f"{line.service}:{line.status}" for line in lines if line.status]
    if statuses:
        out.append("statuses: " + " -> ".join(statuses))
    return "\n".join(out)


def find(topologies: Iterable[Topology], client_for: Any, correlation_id: str) -> tuple[Topology, list[LogLine]] | None:
    """Search each topology's account for the order; the first one holding lines wins."""
    if not CORRELATION_ID.match(correlation_id or ""):
        raise StoryError(f"not a correlation_id: {correlation_id!r} (usage: make story ID=<correlation_id>)")
    for topology in topologies:
        client = client_for(topology)
        # A quoted term filter narrows the read; `select` checks the field exactly afterwards.
        lines = fetch_all(client, topology.log_groups, pattern=f'"{correlation_id}"')
        chosen = select(lines, correlation_id)
        if not chosen:
            # LocalStack's filter pattern support is partial: read everything before giving up.
            chosen = select(fetch_all(client, topology.log_groups), correlation_id)
        if chosen:
            return topology, _with_invocation_lines(client, topology, chosen)
    return None


def _with_invocation_lines(client: Any, topology: Topology, chosen: list[LogLine]) -> list[LogLine]:
    """Add Lambda's own lines (timeouts) for the same request ids, which the filter cannot match."""
    request_ids = {line.request_id for line in chosen if line.request_id}
    if not request_ids:
        return chosen
    start = chosen[0].timestamp_ms - 1000
    end = chosen[-1].timestamp_ms + 120_000
    others = fetch_all(client, topology.log_groups, start, end)
    cid = next(line.correlation_id for line in chosen if line.correlation_id)
    merged = {(line.timestamp_ms, line.role, line.raw) : line for line in chosen}
    for line in select(others, cid):
        merged.setdefault((line.timestamp_ms, line.role, line.raw), line)
    return sorted(merged.values(), key=lambda l: (l.timestamp_ms, ROLES.index(l.role)))
