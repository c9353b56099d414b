"""Execution-role credentials assumed once per function and reused by its new environments.

LocalStack 4.14 calls STS AssumeRole (through an internal HTTP client) for every execution
environment it starts, to fill AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN. A burst that scales a
function to hundreds of environments then spends its first seconds on hundreds of STS round trips
inside LocalStack. The credentials are valid for 12 hours; this cache reuses them per (account,
region, role, function) until an hour before they expire, which is what an environment on AWS sees
too: the same role session for its lifetime. `LAB_PATCH_LAMBDA_CREDENTIALS_CACHE=0` turns it off.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta, timezone

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)
REFRESH_BEFORE_EXPIRY = timedelta(hours=1)

_cache: dict[tuple[str, str, str, str], dict] = {}
_lock = threading.Lock()


def _fresh(credentials: dict) -> bool:
    expiration = credentials.get("Expiration")
    if not isinstance(expiration, datetime):
        return False
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=timezone.utc)
    return expiration - REFRESH_BEFORE_EXPIRY > datetime.now(timezone.utc)


def cached_credentials(original):
    def get_credentials(self):
        version = self.function_version
        key = (version.id.account, version.id.region, version.config.role, version.id.function_name)
        with _lock:
            credentials = _cache.get(key)
        if credentials is not None and _fresh(credentials):
            return credentials
        credentials = original(self)
        with _lock:
            _cache[key] = credentials
        return credentials

    return get_credentials


@hooks.on_infra_start()
def lab_lambda_credentials_cache() -> None:
    if os.environ.get("LAB_PATCH_LAMBDA_CREDENTIALS_CACHE", "1").strip().lower() in {"0", "false", "no", "off"}:
        return
    from localstack.services.lambda_.invocation.execution_environment import ExecutionEnvironment

    ExecutionEnvironment.get_credentials = cached_credentials(ExecutionEnvironment.get_credentials)
    LOG.info("lab platform: execution-role credentials cached per function")
