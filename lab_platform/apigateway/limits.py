"""Which API Gateway limits apply to one request, and usage-plan quota periods (pure logic).

AWS evaluates, in order (developerguide/api-gateway-request-throttling.html):
1. the usage plan's per-method throttle for the API stage (`apiStages[].throttle["/path/METHOD"]`),
   else the usage plan's per-client throttle (`throttle`), both per API key;
2. the stage's method settings throttle (`methodSettings["~1path/METHOD"]`, else `"*/*"`), per
   method and shared by all clients;
and a usage plan `quota` caps the requests per API key per DAY, WEEK or MONTH (UTC periods).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class Throttle:
    rate: float
    burst: float


def _throttle(
    raw: Any, rate_key: str = "rateLimit", burst_key: str = "burstLimit"
) -> Throttle | None:
    if not isinstance(raw, dict):
        return None
    rate, burst = raw.get(rate_key), raw.get(burst_key)
    if rate is None and burst is None:
        return None
    rate = float(rate) if rate is not None else float(burst)
    burst = float(burst) if burst is not None else rate
    return Throttle(rate=rate, burst=burst)


def usage_plan_throttle(
    plan: dict[str, Any], api_id: str, stage: str, resource_path: str, http_method: str
) -> tuple[str, Throttle] | None:
    """(scope, limits) of the usage plan throttle for this method: per-method override first."""
    for api_stage in plan.get("apiStages") or []:
        if api_stage.get("apiId") != api_id or api_stage.get("stage") != stage:
            continue
        overrides = api_stage.get("throttle") or {}
        for key in (f"{resource_path}/{http_method}", f"{resource_path}/*", "*/*"):
            if throttle := _throttle(overrides.get(key)):
                return f"method:{api_id}:{stage}:{key}", throttle
    if throttle := _throttle(plan.get("throttle")):
        return "plan", throttle
    return None


def method_settings_key(resource_path: str, http_method: str) -> str:
    """`/orders/{id}`, GET -> `~1orders~1{id}/GET` (the escaping of stage PATCH paths)."""
    return f"{resource_path.replace('/', '~1')}/{http_method}"


def stage_throttle(
    stage_configuration: dict[str, Any], resource_path: str, http_method: str
) -> tuple[str, Throttle] | None:
    settings = stage_configuration.get("methodSettings") or {}
    escaped = method_settings_key(resource_path, http_method)
    for key in (
        escaped,
        f"{resource_path.lstrip('/')}/{http_method}",
        f"{resource_path.replace('/', '~1')}/*",
        "*/*",
    ):
        if throttle := _throttle(settings.get(key), "throttlingRateLimit", "throttlingBurstLimit"):
            return key, throttle
    return None


@dataclass(frozen=True)
class Quota:
    limit: int
    offset: int
    period: str  # DAY | WEEK | MONTH


def usage_plan_quota(plan: dict[str, Any]) -> Quota | None:
    raw = plan.get("quota")
    if not isinstance(raw, dict) or raw.get("limit") is None:
        return None
    period = str(raw.get("period") or "DAY").upper()
    if period not in ("DAY", "WEEK", "MONTH"):
        raise ValueError(f"usage plan quota period {period!r} is not DAY, WEEK or MONTH")
    return Quota(limit=int(raw["limit"]), offset=int(raw.get("offset") or 0), period=period)


def period_start(period: str, now: datetime) -> datetime:
    """Start of the UTC quota period holding `now` (weeks start on Monday, as on AWS)."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "DAY":
        return day
    if period == "WEEK":
        return day - timedelta(days=day.weekday())
    if period == "MONTH":
        return day.replace(day=1)
    raise ValueError(f"unknown quota period {period!r}")


class QuotaCounter:
    """Requests counted per (plan, key) in the current period; `offset` only in the first one."""

    def __init__(self) -> None:
        self._periods: dict[tuple[str, str], tuple[datetime, int, bool]] = {}
        self._lock = threading.Lock()

    def try_consume(self, plan_id: str, key_id: str, quota: Quota, now: datetime) -> bool:
        with self._lock:
            return self._try_consume(plan_id, key_id, quota, now)

    def _try_consume(self, plan_id: str, key_id: str, quota: Quota, now: datetime) -> bool:
        start = period_start(quota.period, now)
        current = self._periods.get((plan_id, key_id))
        if current is None:
            used, first = quota.offset, True
        elif current[0] != start:
            used, first = 0, False
        else:
            start, used, first = current
        if used >= quota.limit:
            self._periods[(plan_id, key_id)] = (start, used, first)
            return False
        self._periods[(plan_id, key_id)] = (start, used + 1, first)
        return True
