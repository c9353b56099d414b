"""Each emulated account's own Lambda concurrency limit: `LAB_ACCOUNT_CONCURRENCY_BY_ACCOUNT`.

AWS: the concurrent executions quota is per account (and Region): 1,000 by default, raised on
request, and one account's limit says nothing about another's.
LocalStack 4.14: one limit, `LAMBDA_LIMITS_CONCURRENT_EXECUTIONS`, for every account it emulates,
so two accounts on one LocalStack process cannot have different limits, and a catalogue topology
whose account has a raised limit (`account_limit_factor`, lab_kernel/topologies.toml) would need
a process of its own.
Here: `LAB_ACCOUNT_CONCURRENCY_BY_ACCOUNT=999999999999=1000,...` (labctl writes it from the
catalogue) gives those accounts their own limit, everywhere LocalStack reads the one limit: the
invocation lease (`CountingService.get_invocation_lease`: the unreserved pool), GetAccountSettings
(`ConcurrentExecutions`, `UnreservedConcurrentExecutions`), plus the lab's async pollers (their pool
is sized to the account's limit) and the limit gauge at /_lab/metrics. Any other account keeps
`LAMBDA_LIMITS_CONCURRENT_EXECUTIONS`. With the variable empty, nothing is patched.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from functools import cache
from typing import Any

VARIABLE = "LAB_ACCOUNT_CONCURRENCY_BY_ACCOUNT"

# the account whose invocation lease is being decided, while LocalStack's lease code reads the limit
_LEASE_ACCOUNT: contextvars.ContextVar[str | None] = contextvars.ContextVar("lab_lease_account", default=None)


class AccountLimitError(ValueError):
    """The variable is malformed; the message is one line."""


def parse(raw: str | None) -> dict[str, int]:
    """`account=limit,account=limit` -> {account: limit}; empty -> {}."""
    limits: dict[str, int] = {}
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        account, sep, value = item.partition("=")
        account, value = account.strip(), value.strip()
        if not sep or not (account.isdigit() and len(account) == 12) or not value.isdigit() or int(value) < 1:
            raise AccountLimitError(f"{VARIABLE}: {item.strip()!r} is not <12-digit account>=<limit >= 1>,"
                                    f" e.g. {VARIABLE}=999999999999=1000")
        limits[account] = int(value)
    return limits


def render(limits: dict[str, int]) -> str:
    return ",".join(f"{account}={limit}" for account, limit in sorted(limits.items()))


@cache
def configured() -> dict[str, int]:
    """The LocalStack process's per-account limits (read once: they are fixed at its start)."""
    return parse(os.environ.get(VARIABLE))


def account_limit(account: str, default: int | None = None) -> int:
    """`account`'s concurrency limit in this LocalStack process."""
    if default is None:
        from localstack import config

        default = config.LAMBDA_LIMITS_CONCURRENT_EXECUTIONS
    return configured().get(account, default)


class _ConfigView:
    """LocalStack's `config` module as the lease code sees it: the limit of the account whose
    lease is being decided, everything else unchanged. Only that module's name is rebound."""

    def __init__(self, config: Any) -> None:
        self._config = config

    def __getattr__(self, name: str) -> Any:
        if name == "LAMBDA_LIMITS_CONCURRENT_EXECUTIONS":
            account = _LEASE_ACCOUNT.get()
            if account is not None:
                return account_limit(account, self._config.LAMBDA_LIMITS_CONCURRENT_EXECUTIONS)
        return getattr(self._config, name)


def _lease(fn, self, function, function_version, provisioned_state=None) -> Any:
    """The lease decided under the account's own limit; the limit is only read before it is
    granted, so the account is set for exactly that part."""

    @contextlib.contextmanager
    def lease() -> Iterator[Any]:
        token = _LEASE_ACCOUNT.set(function_version.id.account)
        try:
            granted = fn(self, function, function_version, provisioned_state)
            kind = granted.__enter__()
        finally:
            _LEASE_ACCOUNT.reset(token)
        with contextlib.ExitStack() as stack:
            stack.push(granted)  # its __exit__ releases the lease, whatever happens inside
            yield kind

    return lease()


def _get_account_settings(fn, self, context, **kwargs) -> Any:
    response = fn(self, context, **kwargs)
    limit = configured().get(context.account_id)
    if limit is not None:
        account_limit_ = response["AccountLimit"]
        reserved = account_limit_["ConcurrentExecutions"] - account_limit_["UnreservedConcurrentExecutions"]
        account_limit_["ConcurrentExecutions"] = limit
        account_limit_["UnreservedConcurrentExecutions"] = limit - reserved
    return response


def patches():
    from localstack.services.lambda_.invocation import counting_service
    from localstack.services.lambda_.invocation.counting_service import CountingService
    from localstack.services.lambda_.provider import LambdaProvider
    from localstack.utils.patch import Patches

    p = Patches()
    if not configured():
        return p  # every account on LAMBDA_LIMITS_CONCURRENT_EXECUTIONS: nothing to change
    if not isinstance(counting_service.config, _ConfigView):
        counting_service.config = _ConfigView(counting_service.config)
    # the undecorated generator function, wrapped again by our own context manager
    p.function(CountingService.get_invocation_lease, _lease)
    p.function(LambdaProvider.get_account_settings, _get_account_settings)
    return p
