"""The order ledger: accepted = delivered + dead-lettered + in flight + lost, each order once.

Lost is counted, never assumed: an accepted correlation_id is lost only when it was looked for
and not found at the courier, in a dead-letter or on-failure queue, in the delivery queue, or in a
running or retrying delivery, and the topology holds no pending work that could still be it.
While unattributable work is pending (an async event queue, messages being processed) the
undetermined orders are reported as in flight and the ledger says lost is not yet decidable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUCKETS = ("delivered", "dead_lettered", "in_flight", "lost")


@dataclass(frozen=True)
class Evidence:
    """What was found, by correlation_id, for one topology."""

    accepted: frozenset[str]
    delivered: frozenset[str]  # recorded by the courier (or logged COMPLETED by delivery)
    dead_lettered: frozenset[str]  # in the DLQ or the on-failure destination queue
    queued: frozenset[str] = frozenset()  # seen in the delivery queue
    running: frozenset[str] = frozenset()  # a delivery started or failed recently and may retry
    pending_unattributed: int = 0  # pending work no correlation_id could be read from


@dataclass(frozen=True)
class Ledger:
    topology: str
    buckets: dict[str, frozenset[str]]
    lost_decidable: bool
    delivered_and_dead_lettered: frozenset[str] = field(default_factory=frozenset)
    unaccepted_seen: frozenset[str] = field(default_factory=frozenset)

    @property
    def accepted(self) -> int:
        return sum(len(ids) for ids in self.buckets.values())

    def count(self, bucket: str) -> int:
        return len(self.buckets[bucket])

    def share(self, bucket: str) -> float:
        return self.count(bucket) / self.accepted if self.accepted else 0.0

    def check(self) -> None:
        """Every accepted order in exactly one bucket; raises if the arithmetic does not hold."""
        seen: set[str] = set()
        for name in BUCKETS:
            overlap = seen & self.buckets[name]
            if overlap:
                raise AssertionError(f"{self.topology}: {len(overlap)} orders in two buckets, e.g. {sorted(overlap)[:3]}")
            seen |= self.buckets[name]


def build(topology: str, evidence: Evidence) -> Ledger:
    accepted = evidence.accepted
    delivered = accepted & evidence.delivered
    # Delivered wins: the courier has the order even if a late failure also dead-lettered it.
    dead = (accepted & evidence.dead_lettered) - delivered
    in_flight = (accepted & (evidence.queued | evidence.running)) - delivered - dead
    rest = accepted - delivered - dead - in_flight
    decidable = evidence.pending_unattributed == 0
    if not decidable:
        in_flight = in_flight | rest
        rest = frozenset()
    ledger = Ledger(
        topology=topology,
        buckets={
            "delivered": frozenset(delivered),
            "dead_lettered": frozenset(dead),
            "in_flight": frozenset(in_flight),
            "lost": frozenset(rest),
        },
        lost_decidable=decidable,
        delivered_and_dead_lettered=frozenset(accepted & evidence.delivered & evidence.dead_lettered),
        unaccepted_seen=frozenset((evidence.delivered | evidence.dead_lettered) - accepted),
    )
    ledger.check()
    return ledger
