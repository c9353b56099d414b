"""One order's story: every log line of a correlation_id across the three services, in time order.

This is the article's "tell the story" query, printed for a person: time, service, status,
message. Lambda's own lines for the same invocations (a timeout, a crash) are woven in through the
request id Powertools logs, because a timed-out delivery prints no FAILED line of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from lab_kernel.endpoints import TopologyEndpoints
from report.logs import LogLine, fetch_all, role_order

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
    chosen.sort(key=lambda line: (line.timestamp_ms, role_order(line.role)))
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


ACCOUNT = re.compile(r"^[0-9]{12}$")


def account_log_groups(lambda_client: Any) -> dict[str, str]:
    """Every function of an account and region, whatever created it: function name -> its log
    group (the function's LoggingConfig.LogGroup, else AWS's default /aws/lambda/<name>)."""
    groups: dict[str, str] = {}
    for page in lambda_client.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            groups[name] = (function.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}"
    return groups


def account_topology(account: str, region: str, localstack_url: str, lambda_client: Any) -> TopologyEndpoints:
    """An account the lab did not provision (a stack deployed with SAM or CloudFormation) as a
    place to search: its functions are its roles."""
    if not ACCOUNT.match(account or ""):
        raise StoryError(f"not an account id: {account!r} (12 digits, e.g. ACCOUNT=444444444444)")
    groups = account_log_groups(lambda_client)
    if not groups:
        raise StoryError(f"account {account} has no function in {region} at {localstack_url}: "
                         "is REGION the one the stack was deployed to?")
    return TopologyEndpoints(name=f"account {account} ({region})", account=account, region=region, notify_url="",
                    courier_url="", queues={}, functions=groups, log_groups=groups, deliveries_table="",
                    localstack_url=localstack_url)


def find(topologies: Iterable[TopologyEndpoints], client_for: Any, correlation_id: str) -> tuple[TopologyEndpoints, list[LogLine]] | None:
    """Search each topology's account for the order; the first one holding lines wins."""
    if not CORRELATION_ID.match(correlation_id or ""):
        raise StoryError(f"not a correlation_id: {correlation_id!r} (usage: make story ID=<correlation_id>)")
    for topology in topologies:
        # One read of the three groups: LocalStack 4.14 does not honour a quoted-term filter
        # pattern (it answered ~90% of all lines for one id), so the choice is made here, which
        # also keeps Lambda's own lines (a timeout) that only the request id ties to the order.
        chosen = select(fetch_all(client_for(topology), topology.log_groups), correlation_id)
        if chosen:
            return topology, chosen
    return None
