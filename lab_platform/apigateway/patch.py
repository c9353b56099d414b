"""Usage-plan and stage throttling, and usage-plan quotas, for REST APIs (v1).

AWS: every request to a stage is checked against token buckets (usage plan per-method override or
per-client throttle, per API key; the stage's method settings, per method) and the usage plan's
quota; an empty bucket answers 429 `{"message": "Too Many Requests"}`, an exhausted quota 429
`{"message": "Limit Exceeded"}`. A missing or unknown key still answers 403.
LocalStack 4.14: `ApiKeyValidationHandler` checks the key only ("We currently do not support rate
limiting or quota limit"); `ThrottledError` exists but is never raised: every request passes.
Here: the handler is wrapped; after LocalStack validated the key, the limits are enforced.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
    QuotaExceededError,
    ThrottledError,
)
from localstack.services.apigateway.next_gen.execute_api.handlers.api_key_validation import (
    ApiKeyValidationHandler,
)
from localstack.services.apigateway.next_gen.execute_api.moto_helpers import (
    get_usage_plan_keys,
    get_usage_plans,
)
from localstack.utils.patch import Patches

from lab_platform.apigateway.limits import (
    QuotaCounter,
    Throttle,
    stage_throttle,
    usage_plan_quota,
    usage_plan_throttle,
)
from lab_platform.apigateway.token_bucket import TokenBucket

LOG = logging.getLogger(__name__)


class Limiter:
    """The buckets and quota counters of every API in this LocalStack (keyed by account/region)."""

    def __init__(self) -> None:
        self._buckets: dict[tuple, TokenBucket] = {}
        self._lock = threading.Lock()
        self.quotas = QuotaCounter()

    def take(self, key: tuple, throttle: Throttle) -> bool:
        # the limits are part of the key: updating a plan or stage starts a fresh, full bucket
        full_key = (*key, throttle.rate, throttle.burst)
        bucket = self._buckets.get(full_key)
        if bucket is None:
            with self._lock:
                bucket = self._buckets.setdefault(
                    full_key, TokenBucket(throttle.rate, throttle.burst)
                )
        return bucket.try_take()


LIMITER = Limiter()


def enforce(context: Any) -> None:
    """Raise the gateway exception AWS would answer with for this request, if any."""
    resource_path = (context.resource or {}).get("path") or "/"
    http_method = (context.resource_method or {}).get("httpMethod") or context.request.method
    account, region = context.account_id, context.region
    api_id, stage = context.api_id, context.stage

    identity = (context.context_variables or {}).get("identity") or {}
    key_id = identity.get("apiKeyId")
    if (context.resource_method or {}).get("apiKeyRequired") and key_id:
        for plan in get_usage_plans(account_id=account, region_name=region):
            if not _plan_covers(plan, api_id, stage):
                continue
            if not _plan_has_key(plan, key_id, account, region):
                continue
            plan_id = plan["id"]
            if found := usage_plan_throttle(plan, api_id, stage, resource_path, http_method):
                scope, throttle = found
                if not LIMITER.take((account, region, plan_id, key_id, scope), throttle):
                    raise ThrottledError("Too Many Requests")
            if quota := usage_plan_quota(plan):
                if not LIMITER.quotas.try_consume(plan_id, key_id, quota, datetime.now(UTC)):
                    raise QuotaExceededError("Limit Exceeded")
            break  # a key belongs to one plan per API stage on AWS

    if found := stage_throttle(context.stage_configuration or {}, resource_path, http_method):
        _, throttle = found
        if not LIMITER.take((account, region, api_id, stage, resource_path, http_method), throttle):
            raise ThrottledError("Too Many Requests")


def _plan_covers(plan: dict, api_id: str, stage: str) -> bool:
    return any(
        s.get("apiId") == api_id and s.get("stage") == stage for s in plan.get("apiStages") or []
    )


def _plan_has_key(plan: dict, key_id: str, account: str, region: str) -> bool:
    return any(
        k.get("id") == key_id
        for k in get_usage_plan_keys(
            usage_plan_id=plan["id"], account_id=account, region_name=region
        )
    )


def _validate_then_limit(fn, self, chain, context, response) -> None:
    fn(self, chain, context, response)  # 403 for a missing or wrong key, as before
    enforce(context)


def patches() -> Patches:
    p = Patches()
    p.function(ApiKeyValidationHandler.__call__, _validate_then_limit)
    return p
