"""Ledger arithmetic from given sets: every accepted order in exactly one bucket, lost counted."""

from __future__ import annotations

import pytest

from report.ledger import BUCKETS, Evidence, Ledger, build


def ids(prefix: str, n: int) -> frozenset[str]:
    return frozenset(f"{prefix}-{i}" for i in range(n))


def test_partition_adds_up_and_lost_is_what_was_found_nowhere():
    accepted = ids("o", 10)
    ev = Evidence(
        accepted=accepted,
        delivered=frozenset({"o-0", "o-1", "o-2", "o-3"}),
        dead_lettered=frozenset({"o-4", "o-5"}),
        queued=frozenset({"o-6"}),
        running=frozenset({"o-7"}),
    )
    ledger = build("no-flow-control", ev)
    assert {b: ledger.count(b) for b in BUCKETS} == {"delivered": 4, "dead_lettered": 2, "in_flight": 2, "lost": 2}
    assert ledger.buckets["lost"] == {"o-8", "o-9"}
    assert ledger.accepted == 10
    assert ledger.lost_decidable
    assert ledger.share("delivered") == pytest.approx(0.4)


def test_delivered_wins_over_dead_lettered_and_is_reported():
    ev = Evidence(
        accepted=frozenset({"a", "b"}),
        delivered=frozenset({"a"}),
        dead_lettered=frozenset({"a", "b"}),
        running=frozenset({"a", "b"}),
    )
    ledger = build("t", ev)
    assert ledger.buckets["delivered"] == {"a"}
    assert ledger.buckets["dead_lettered"] == {"b"}
    assert ledger.count("in_flight") == 0
    assert ledger.delivered_and_dead_lettered == {"a"}


def test_ids_outside_the_accepted_set_are_not_counted_but_reported():
    ev = Evidence(accepted=frozenset({"a"}), delivered=frozenset({"a", "zz"}), dead_lettered=frozenset({"yy"}))
    ledger = build("t", ev)
    assert ledger.accepted == 1
    assert ledger.unaccepted_seen == {"zz", "yy"}


def test_pending_unattributed_work_makes_lost_undecidable():
    ev = Evidence(accepted=ids("o", 5), delivered=frozenset({"o-0"}), dead_lettered=frozenset(), pending_unattributed=3)
    ledger = build("t", ev)
    assert not ledger.lost_decidable
    assert ledger.count("lost") == 0
    assert ledger.count("in_flight") == 4


def test_empty_run():
    ledger = build("t", Evidence(frozenset(), frozenset(), frozenset()))
    assert ledger.accepted == 0 and ledger.share("delivered") == 0.0


def test_check_rejects_an_order_in_two_buckets():
    ledger = Ledger(
        topology="t",
        buckets={"delivered": frozenset({"a"}), "dead_lettered": frozenset({"a"}), "in_flight": frozenset(), "lost": frozenset()},
        lost_decidable=True,
    )
    with pytest.raises(AssertionError, match="two buckets"):
        ledger.check()
