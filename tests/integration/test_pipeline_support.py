"""Helpers (no tests) for the pipeline and bootstrap integration tests: progress capture, log stories."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from bootstrap.progress import Progress

T = TypeVar("T")

SERVICES = {"notification": "notify-handler", "delivery": "delivery-handler", "courier": "slow-api"}


@dataclass
class Provisioned:
    endpoints: dict[str, Any]
    output: str
    seconds: float


class Tee(io.StringIO):
    """Keeps the progress lines for assertions and still shows them with `pytest -s`."""

    def write(self, text: str) -> int:
        print(text, end="")
        return super().write(text)


def recording_progress() -> Progress:
    return Progress(out=Tee())


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def log_lines(logs_client, group: str) -> list[dict[str, Any]]:
    """Every structured (JSON) line of a log group, with the event's timestamp added as `_ts`."""
    lines: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": group}
    while True:
        try:
            page = logs_client.filter_log_events(**kwargs)
        except logs_client.exceptions.ResourceNotFoundException:
            return lines
        for event in page.get("events", []):
            for raw in event["message"].splitlines():
                raw = raw.strip()
                if raw.startswith("{"):
                    try:
                        line = json.loads(raw)
                    except json.JSONDecodeError:
                        continue
                    line["_ts"] = event["timestamp"]
                    line["_at"] = powertools_time(line)
                    lines.append(line)
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            return lines
        kwargs["nextToken"] = token


def powertools_time(line: dict[str, Any]) -> datetime | None:
    """The time Powertools stamped on the line (millisecond precision), if it has one."""
    try:
        return datetime.strptime(line["timestamp"], "%Y-%m-%d %H:%M:%S,%f%z")
    except (KeyError, TypeError, ValueError):
        return None


def story(logs_client, group: str, correlation_id: str) -> list[dict[str, Any]]:
    """The key lines (with a `status`) of one order in one log group, oldest first."""
    key_lines = [
        line for line in log_lines(logs_client, group)
        if line.get("correlation_id") == correlation_id
        and isinstance(line.get("message"), dict) and "status" in line["message"]
    ]
    return sorted(key_lines, key=lambda line: line["_at"] or datetime.fromtimestamp(line["_ts"] / 1000, UTC))


def statuses(lines: list[dict[str, Any]]) -> list[str]:
    return [line["message"]["status"] for line in lines]
