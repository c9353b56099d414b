"""CloudWatch Logs of the three services, read the way the article reads them.

Powertools Logger prints one JSON object a line (service, correlation_id, status, message, level,
timestamp). Lambda's own lines (START RequestId, REPORT, "Task timed out") are plain text; they
are kept with `service` set from the log group so a story can show a timeout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ROLES = ("notification", "delivery", "courier")
TERMINAL = ("COMPLETED", "FAILED")
_REQUEST_ID = re.compile(r"\b([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\b")


@dataclass(frozen=True)
class LogLine:
    timestamp_ms: int  # CloudWatch ingestion-side event timestamp: one clock for all services
    role: str  # notification | delivery | courier
    service: str
    correlation_id: str | None
    status: str | None
    level: str | None
    message: str
    request_id: str | None = None
    order_id: str | None = None
    raw: str = ""

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


def powertools_time_ms(value: object) -> int | None:
    """Powertools' own timestamp ("2026-11-23 07:52:27,529+0000"), taken when the line was logged.

    Preferred to the CloudWatch event time, which the runtime stamps when it ships the
    invocation's logs (all lines of one invocation share it).
    """
    if not isinstance(value, str):
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S,%f%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return int(datetime.strptime(value, fmt).timestamp() * 1000)
        except ValueError:
            continue
    return None


# The seed repository's functions end a story in "COMPLETE"; the lab's in "COMPLETED" (AWS's
# word for a finished step). Read as one, so the report and story read the seed unchanged.
_STATUS_ALIASES = {"COMPLETE": "COMPLETED"}


def _status(value: object) -> str | None:
    if not value:
        return None
    status = str(value).upper()
    return _STATUS_ALIASES.get(status, status)


def parse_line(role: str, timestamp_ms: int, text: str) -> LogLine:
    text = text.rstrip("\n")
    data: Any = None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            data = None
    if isinstance(data, dict):
        raw_message = data.get("message", "")
        status = data.get("status")
        if isinstance(raw_message, dict):
            # Powertools puts a logged dict under "message": {"status": ..., "message": ..., ...}
            status = status or raw_message.get("status")
            text = raw_message.get("message")
            extras = {k: v for k, v in raw_message.items() if k not in ("status", "message")}
            message = "" if text is None else str(text)
            if extras:
                message += (" " if message else "") + " ".join(
                    f"{k}={v if isinstance(v, str) else json.dumps(v, sort_keys=True)}" for k, v in extras.items()
                )
        elif isinstance(raw_message, str):
            message = raw_message
        else:
            message = json.dumps(raw_message, sort_keys=True)
        return LogLine(
            timestamp_ms=powertools_time_ms(data.get("timestamp")) or timestamp_ms,
            role=role,
            service=str(data.get("service") or role),
            correlation_id=(str(data["correlation_id"]) if data.get("correlation_id") else None),
            status=_status(status),
            level=data.get("level"),
            message=message,
            request_id=data.get("function_request_id"),
            order_id=(str(data["order_id"]) if data.get("order_id") is not None else None),
            raw=text,
        )
    match = _REQUEST_ID.search(text)
    return LogLine(
        timestamp_ms=timestamp_ms,
        role=role,
        service=role,
        correlation_id=None,
        status=None,
        level=None,
        message=stripped,
        request_id=match.group(1) if match else None,
        raw=text,
    )


def fetch_group(
    client: Any,
    group: str,
    role: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    pattern: str | None = None,
) -> Iterator[LogLine]:
    """Every event of a log group in the time range (paginated); a missing group yields nothing."""
    kwargs: dict[str, Any] = {"logGroupName": group}
    if start_ms is not None:
        kwargs["startTime"] = int(start_ms)
    if end_ms is not None:
        kwargs["endTime"] = int(end_ms)
    if pattern:
        kwargs["filterPattern"] = pattern
    seen_tokens: set[str] = set()
    while True:
        try:
            page = client.filter_log_events(**kwargs)
        except client.exceptions.ResourceNotFoundException:
            return
        for event in page.get("events", []):
            yield parse_line(role, int(event["timestamp"]), event.get("message", ""))
        token = page.get("nextToken")
        # a token seen twice would loop for ever: stop instead
        if not token or token in seen_tokens:
            return
        seen_tokens.add(token)
        kwargs["nextToken"] = token


def fetch_all(
    client: Any,
    groups: dict[str, str],
    start_ms: int | None = None,
    end_ms: int | None = None,
    pattern: str | None = None,
    progress: Callable[[str], None] | None = None,
    every: int = 20000,
) -> list[LogLine]:
    """All lines of the groups in time order; `progress` hears every `every` lines (an 18-minute
    run holds hundreds of thousands, read a page of at most 10,000 at a time)."""
    lines: list[LogLine] = []
    # the three services' roles first; any other key (a function of an app the lab did not
    # provision, `make story ACCOUNT=...`) is its own role and sorts after them at equal times
    for role in sorted(groups, key=role_order):
        for line in fetch_group(client, groups[role], role, start_ms, end_ms, pattern):
            lines.append(line)
            if progress and len(lines) % every == 0:
                progress(f"{len(lines)} log lines read ({groups[role]})")
    lines.sort(key=lambda line: (line.timestamp_ms, role_order(line.role)))
    return lines


def role_order(role: str) -> int:
    return ROLES.index(role) if role in ROLES else len(ROLES)


@dataclass(frozen=True)
class StatusIndex:
    """correlation_ids by (role, status) and first/last times, for success rates and latency."""

    ids: dict[tuple[str, str], set[str]]
    first: dict[tuple[str, str, str], int]  # (role, status, correlation_id) -> first timestamp
    last: dict[tuple[str, str, str], int]
    counts: dict[tuple[str, str], int]  # log lines (not ids) per (role, status)

    def get(self, role: str, status: str) -> set[str]:
        return self.ids.get((role, status), set())


def index_statuses(lines: Iterable[LogLine]) -> StatusIndex:
    ids: dict[tuple[str, str], set[str]] = {}
    first: dict[tuple[str, str, str], int] = {}
    last: dict[tuple[str, str, str], int] = {}
    counts: dict[tuple[str, str], int] = {}
    for line in lines:
        if not line.status or not line.correlation_id:
            continue
        key = (line.role, line.status)
        ids.setdefault(key, set()).add(line.correlation_id)
        counts[key] = counts.get(key, 0) + 1
        k3 = (line.role, line.status, line.correlation_id)
        first[k3] = min(first.get(k3, line.timestamp_ms), line.timestamp_ms)
        last[k3] = max(last.get(k3, line.timestamp_ms), line.timestamp_ms)
    return StatusIndex(ids, first, last, counts)
