"""pybreaker state in one DynamoDB item, so every Lambda environment sees one circuit.

Item (key `name`): `state`, `fail_count`, `success_count`, `opened_at` (epoch s), and while a
half-open probe is in flight `probe_owner` + `probe_until` (a lease, so a probe whose environment
died does not block the circuit forever).

Transitions are conditional writes (`transition()`): when several environments decide at once to
open, half-open or close the circuit, exactly one write wins. The winner alone announces it (log +
metric) and resets counters, so each transition is counted once for the whole function.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pybreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN, CircuitBreakerStorage

_CONDITION_FAILED = "ConditionalCheckFailedException"

# which state a transition may start from (conditional write)
_ALLOWED_FROM = {
    STATE_OPEN: (STATE_CLOSED, STATE_HALF_OPEN),
    STATE_HALF_OPEN: (STATE_OPEN,),
    STATE_CLOSED: (STATE_HALF_OPEN,),
}


def _is_condition_failure(exc: Exception) -> bool:
    return getattr(exc, "response", {}).get("Error", {}).get("Code") == _CONDITION_FAILED


class DynamoDBCircuitStorage(CircuitBreakerStorage):
    """A pybreaker CircuitBreakerStorage backed by one DynamoDB item (low-level client API)."""

    def __init__(self, table: str, name: str, client: Any, initial_state: str = STATE_CLOSED):
        super().__init__(name)
        self.table = table
        self._client = client
        self._key = {"name": {"S": name}}
        self._last: dict[str, Any] = {}
        try:
            self._client.put_item(
                TableName=table,
                Item={
                    **self._key,
                    "state": {"S": initial_state},
                    "fail_count": {"N": "0"},
                    "success_count": {"N": "0"},
                },
                ConditionExpression="attribute_not_exists(#n)",
                ExpressionAttributeNames={"#n": "name"},
            )
        except Exception as exc:
            if not _is_condition_failure(exc):
                raise

    # ---- reads ----------------------------------------------------------------------------------
    def item(self) -> dict[str, Any]:
        """The circuit's item, read consistently (a stale read could admit a second probe)."""
        response = self._client.get_item(TableName=self.table, Key=self._key, ConsistentRead=True)
        self._last = response.get("Item", {})
        return self._last

    @property
    def state(self) -> str:
        return self.item().get("state", {}).get("S", STATE_CLOSED)

    @state.setter
    def state(self, state: str) -> None:
        # pybreaker's own transitions go through SharedCircuitBreaker.transition(); an
        # unconditional set (e.g. pybreaker internals or an operator reset) still works.
        self._client.update_item(
            TableName=self.table,
            Key=self._key,
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":s": {"S": state}},
        )

    @property
    def counter(self) -> int:
        return int(self.item().get("fail_count", {}).get("N", "0"))

    @property
    def success_counter(self) -> int:
        return int(self.item().get("success_count", {}).get("N", "0"))

    @property
    def opened_at(self) -> datetime | None:
        raw = self.item().get("opened_at", {}).get("N")
        return datetime.fromtimestamp(float(raw), UTC) if raw else None

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        self._set_number("opened_at", value.timestamp())

    # ---- counters (atomic ADD, so concurrent environments never lose a count) -------------------
    def _add(self, attribute: str) -> None:
        self._client.update_item(
            TableName=self.table,
            Key=self._key,
            UpdateExpression="ADD #a :one",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    def _set_number(self, attribute: str, value: float) -> None:
        self._client.update_item(
            TableName=self.table,
            Key=self._key,
            UpdateExpression="SET #a = :v",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":v": {"N": repr(value)}},
        )

    def increment_counter(self) -> None:
        self._add("fail_count")

    def reset_counter(self) -> None:
        # pybreaker resets after every success; skip the write when the last read shows 0 so a
        # healthy closed circuit costs one read per call, not a read and a write
        if self._last.get("fail_count", {}).get("N", "0") != "0":
            self._set_number("fail_count", 0)
            self._last["fail_count"] = {"N": "0"}

    def increment_success_counter(self) -> None:
        self._add("success_count")

    def reset_success_counter(self) -> None:
        self._set_number("success_count", 0)

    # ---- conditional transitions and the half-open probe lease ----------------------------------
    def transition(self, new_state: str, owner: str, lease_seconds: float,
                   expected_opened_at: float | None = None) -> bool:
        """Move to `new_state` if the circuit is in a state it may come from; True if we won.

        OPEN stamps `opened_at`; HALF_OPEN also requires the same `opened_at` we saw (one
        half-open per open period) and hands the probe lease to the winner; CLOSED zeroes counters.
        """
        now = time.time()
        names = {"#s": "state"}
        values: dict[str, Any] = {":new": {"S": new_state}}
        sets = ["#s = :new", "success_count = :zero"]
        removes: list[str] = []
        values[":zero"] = {"N": "0"}
        allowed = _ALLOWED_FROM[new_state]
        conditions = []
        for i, state in enumerate(allowed):
            values[f":from{i}"] = {"S": state}
        conditions.append("(" + " OR ".join(f"#s = :from{i}" for i in range(len(allowed))) + ")")
        if new_state == STATE_OPEN:
            sets.append("opened_at = :now")
            values[":now"] = {"N": repr(now)}
            removes += ["probe_owner", "probe_until"]
        elif new_state == STATE_HALF_OPEN:
            sets += ["probe_owner = :owner", "probe_until = :until"]
            values[":owner"] = {"S": owner}
            values[":until"] = {"N": repr(now + lease_seconds)}
            if expected_opened_at is not None:
                conditions.append("opened_at = :seen")
                values[":seen"] = {"N": repr(expected_opened_at)}
        else:
            sets.append("fail_count = :zero")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            self._client.update_item(
                TableName=self.table,
                Key=self._key,
                UpdateExpression=expression,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise

    def opened_at_raw(self) -> float | None:
        raw = self.item().get("opened_at", {}).get("N")
        return float(raw) if raw else None

    def acquire_probe(self, owner: str, lease_seconds: float) -> bool:
        """Take the single half-open probe lease (free, expired, or already ours)."""
        now = time.time()
        try:
            self._client.update_item(
                TableName=self.table,
                Key=self._key,
                UpdateExpression="SET probe_owner = :me, probe_until = :until",
                ConditionExpression=(
                    "#s = :half AND (attribute_not_exists(probe_owner) OR probe_owner = :me "
                    "OR probe_until < :now)"
                ),
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":me": {"S": owner},
                    ":until": {"N": repr(now + lease_seconds)},
                    ":now": {"N": repr(now)},
                    ":half": {"S": STATE_HALF_OPEN},
                },
            )
            return True
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise

    def release_probe(self, owner: str) -> None:
        try:
            self._client.update_item(
                TableName=self.table,
                Key=self._key,
                UpdateExpression="REMOVE probe_owner, probe_until",
                ConditionExpression="probe_owner = :me",
                ExpressionAttributeValues={":me": {"S": owner}},
            )
        except Exception as exc:
            if not _is_condition_failure(exc):
                raise

    def force(self, state: str) -> None:
        """Operator reset (CLI): set a state unconditionally and clear counters and the lease."""
        self._client.update_item(
            TableName=self.table,
            Key=self._key,
            UpdateExpression=(
                "SET #s = :s, fail_count = :zero, success_count = :zero, opened_at = :now "
                "REMOVE probe_owner, probe_until"
            ),
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={
                ":s": {"S": state},
                ":zero": {"N": "0"},
                ":now": {"N": repr(time.time())},
            },
        )
