"""Collect what one topology did in a run: the article's success rate, the ledger, duplicates,
latency. Sources are the topology's own AWS resources (CloudWatch Logs, the courier's DynamoDB
table, the queues), read in its account, so each number can be traced to records.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from report import ledger as ledger_mod
from report.courier_calls import CourierCall, courier_calls
from report.aws_state import CourierRecord, QueueContents, read_queue, scan_deliveries
from lab_kernel import topologies as lab_topologies
from lab_kernel.endpoints import TopologyEndpoints
from report.logs import LogLine, fetch_all, index_statuses
from report.quantiles import nearest_rank
from report.runs import RunWindow

# How long after its last log line an undelivered order may still be retried: the delivery
# function timeout (29 s) plus Lambda's async retry delays or the queue's visibility timeout
# (150 s). Past it, with nothing pending, an undelivered order is counted lost.
DEFAULT_SETTLE_SECONDS = 240.0


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


def percentiles(values: list[float]) -> Percentiles:
    """Nearest-rank percentiles (no interpolation: every figure is a measured latency)."""
    if not values:
        return Percentiles(0, None, None, None, None)
    return Percentiles(len(values), nearest_rank(values, 0.50), nearest_rank(values, 0.95),
                       nearest_rank(values, 0.99), max(values))


@dataclass
class TopologyResult:
    name: str
    account: str
    started: set[str]  # notify-handler START (the article's denominator)
    accepted: set[str]  # notify-handler COMPLETED: the order is on the bus
    completed: set[str]  # delivery-handler COMPLETED (the courier's where no delivery function runs)
    line_counts: dict[str, int]  # "role STATUS" -> log lines
    ledger: ledger_mod.Ledger
    duplicates: dict[str, int]  # correlation_id -> deliveries (> 1) at the courier
    courier_records: int
    latency: Percentiles  # seconds, notify START -> delivery COMPLETED
    queues: dict[str, QueueContents]
    notes: list[str] = field(default_factory=list)
    # unix seconds, one entry per order: when it was accepted, and when it was first delivered
    # (the business outcome over time, each order once however often it was retried)
    accepted_at: dict[str, float] = field(default_factory=dict)
    delivered_at: dict[str, float] = field(default_factory=dict)
    # delivery-handler COMPLETED before the load ended: what the article's Logs Insights query
    # showed when its test stopped (retries still to come were not in it)
    completed_in_load: set[str] = field(default_factory=set)
    courier_calls: list[CourierCall] = field(default_factory=list)  # as the delivery function saw them

    @property
    def actual_success(self) -> float | None:
        """The article's measure: delivery COMPLETED over notify START, matched by correlation_id."""
        if not self.started:
            return None
        return len(self.completed & self.started) / len(self.started)

    @property
    def actual_success_in_load(self) -> float | None:
        """The article's measure counted over the load window alone."""
        if not self.started:
            return None
        return len(self.completed_in_load & self.started) / len(self.started)


def run_lines(lines: list[LogLine], window: RunWindow) -> list[LogLine]:
    """The notification lines of this run's orders.

    With a run id (the load's order ids start with it) an order belongs to the run when any of
    its notification lines names such an order id: the START line is logged before the order is
    parsed, so it carries only the correlation_id. Without one, or when the notification function
    logs no order id at all (the seed's logs only the event), the time window decides.
    """
    notify = [line for line in lines if line.role == "notification"]
    if window.run_id and any(l.order_id for l in notify):
        ids = {l.correlation_id for l in notify if l.order_id and l.order_id.startswith(window.run_id)}
        return [line for line in notify if line.correlation_id in ids]
    return [line for line in notify if window.start - 1 <= line.timestamp_ms / 1000 <= window.end + 5]


def delivering_role(topology_name: str) -> str:
    """Whose COMPLETED line marks an order delivered: the delivery function's, or the courier's
    where the bus calls the courier itself (an API destination: no delivery function runs)."""
    try:
        return "delivery" if lab_topologies.catalogue().get(topology_name).has_delivery_function else "courier"
    except lab_topologies.CatalogueError:
        return "delivery"  # an app of the user's own, such as the seed's: it has one


def collect(
    topology: TopologyEndpoints,
    window: RunWindow,
    client_for: Callable[[TopologyEndpoints, str], Any],
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    now: float | None = None,
) -> TopologyResult:
    now = time.time() if now is None else now
    logs = client_for(topology, "logs")
    # Deliveries go on after the load stops (retries, the queue draining): read up to now.
    lines = fetch_all(
        logs, topology.log_groups, int((window.start - 60) * 1000), int(now * 1000) + 1000,
        progress=lambda m: print(f"report: {topology.name}: {m}", file=sys.stderr, flush=True),
    )
    notify = run_lines(lines, window)
    idx_notify = index_statuses(notify)
    started = idx_notify.get("notification", "START")
    accepted = idx_notify.get("notification", "COMPLETED")
    idx = index_statuses(line for line in lines if line.role != "notification")
    done_role = delivering_role(topology.name)
    completed = idx.get(done_role, "COMPLETED") & (started | accepted)

    counts = {f"{role} {status}": n for (role, status), n in sorted(idx_notify.counts.items())}
    counts.update({f"{role} {status}": n for (role, status), n in sorted(idx.counts.items())})

    notes: list[str] = []
    try:
        if not topology.deliveries_table:
            # an app whose courier keeps no record (the seed's): the same fallback, said once
            records, table_ok = {}, False
            notes.append("no courier table in the endpoints file: delivered/duplicates from the courier's logs")
        else:
            records = {r.correlation_id: r for r in scan_deliveries(client_for(topology, "dynamodb"),
                                                                     topology.deliveries_table)}
            table_ok = True
    except ClientError as error:
        # The courier's logs still say what it processed; duplicates are then counted from them.
        records, table_ok = {}, False
        notes.append(f"courier table {topology.deliveries_table} unreadable "
                     f"({error.response.get('Error', {}).get('Code')}): delivered/duplicates from the courier's logs")
    sqs = client_for(topology, "sqs")
    queues = {role: read_queue(sqs, url) for role, url in sorted(topology.queues.items())}
    dead = set()
    for role in ("dlq", "on_failure"):
        if role in queues:
            dead |= queues[role].correlation_ids
    delivery_q = queues.get("delivery")

    # Latest delivery-side activity per order: a recent START/FAILED may still retry.
    last_seen: dict[str, int] = {}
    for line in lines:
        if line.role == done_role and line.correlation_id:
            last_seen[line.correlation_id] = max(last_seen.get(line.correlation_id, 0), line.timestamp_ms)
    courier_done = idx.get("courier", "COMPLETED")
    delivered = (set(records) | completed | courier_done) & accepted
    recent = {cid for cid, ms in last_seen.items() if now - ms / 1000 < settle_seconds}
    last_activity = max(last_seen.values(), default=0) / 1000
    never_started = accepted - set(last_seen) - delivered - dead
    # Accepted only just now: still on its way (bus, queue, async event queue) by its own clock.
    just_accepted = {
        cid for cid in never_started
        if now - idx_notify.first.get(("notification", "COMPLETED", cid), 0) / 1000 < settle_seconds
    }
    recent |= just_accepted
    never_started -= just_accepted
    # Parked by the circuit breaker (its PARKED line names the retry queue's message) and not
    # started again since: the retry queue holds it, delayed up to 900 s, where no receive finds it.
    parked = {cid for cid in idx.get(done_role, "PARKED")
              if idx.last[(done_role, "PARKED", cid)] >= idx.last.get((done_role, "START", cid), 0)}
    pending = 0
    if delivery_q is not None:
        pending += delivery_q.unreadable + max(0, delivery_q.visible - delivery_q.messages_read)
    if never_started and now - last_activity < settle_seconds:
        # Orders no delivery has touched yet, while the topology is still busy: they may sit in
        # Lambda's async event queue, which no API lists. Undecidable until the activity settles.
        pending += len(never_started)
        notes.append(
            f"{len(never_started)} accepted orders not yet picked up while deliveries ran "
            f"{now - last_activity:.0f} s ago: lost is decided after {settle_seconds:.0f} s of quiet"
        )
    evidence = ledger_mod.Evidence(
        accepted=frozenset(accepted),
        delivered=frozenset(delivered),
        dead_lettered=frozenset(dead),
        queued=frozenset(delivery_q.correlation_ids if delivery_q else ()) | frozenset(parked),
        running=frozenset(recent),
        pending_unattributed=pending,
    )
    ledger = ledger_mod.build(topology.name, evidence)
    if table_ok:
        duplicates = {cid: r.deliveries for cid, r in records.items() if r.deliveries > 1 and cid in accepted}
    else:
        per_order: dict[str, int] = {}
        for line in lines:
            if line.role == "courier" and line.status == "COMPLETED" and line.correlation_id in accepted:
                per_order[line.correlation_id] = per_order.get(line.correlation_id, 0) + 1
        duplicates = {cid: n for cid, n in per_order.items() if n > 1}

    first_start = {cid: ms for (role, status, cid), ms in idx_notify.first.items() if status == "START"}
    latencies = [
        (idx.first[(done_role, "COMPLETED", cid)] - first_start[cid]) / 1000
        for cid in completed
        if cid in first_start and (done_role, "COMPLETED", cid) in idx.first
    ]
    accepted_at = {
        cid: idx_notify.first[("notification", "COMPLETED", cid)] / 1000
        for cid in accepted if ("notification", "COMPLETED", cid) in idx_notify.first
    }
    delivered_at = {}
    for cid in ledger.buckets["delivered"]:
        when = _first_delivery(cid, idx.first, records.get(cid))
        if when is not None:
            delivered_at[cid] = when
    for status, ids_ in (("START", started), ("COMPLETED", accepted)):
        lines_n = idx_notify.counts.get(("notification", status), 0)
        if lines_n > len(ids_):
            notes.append(f"{lines_n} notify-handler {status} lines for {len(ids_)} orders: "
                         "some requests were handled more than once (same API Gateway request id)")
    if not started:
        notes.append("no notify-handler START lines in the window: no load reached this topology")
    return TopologyResult(
        name=topology.name,
        account=topology.account,
        started=started,
        accepted=accepted,
        completed=completed,
        line_counts=counts,
        ledger=ledger,
        duplicates=duplicates,
        courier_records=len(records) if table_ok else len(courier_done & accepted),
        latency=percentiles(latencies),
        queues=queues,
        notes=notes,
        accepted_at=accepted_at,
        delivered_at=delivered_at,
        courier_calls=courier_calls(lines),
        completed_in_load={
            cid for cid in completed if idx.first.get((done_role, "COMPLETED", cid), math.inf) / 1000 <= window.end
        },
    )


def _first_delivery(cid: str, first: dict[tuple[str, str, str], int], record: CourierRecord | None) -> float | None:
    """The earliest sign of delivery: the courier's record, or a COMPLETED line of either side."""
    times = [first[k] / 1000 for k in (("delivery", "COMPLETED", cid), ("courier", "COMPLETED", cid)) if k in first]
    if record is not None and record.first_delivered_at:
        try:
            times.append(datetime.fromisoformat(record.first_delivered_at).timestamp())
        except ValueError:
            pass
    return min(times, default=None)
