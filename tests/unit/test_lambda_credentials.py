"""Execution-role credentials are reused per function until close to expiry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from lab_platform import lambda_credentials


def environment(function: str, role: str = "arn:aws:iam::111111111111:role/r"):
    version = SimpleNamespace(
        id=SimpleNamespace(account="111111111111", region="us-east-1", function_name=function),
        config=SimpleNamespace(role=role),
    )
    return SimpleNamespace(function_version=version)


def test_credentials_are_assumed_once_per_function_and_renewed_near_expiry():
    lambda_credentials._cache.clear()
    calls = []
    expires = [datetime.now(timezone.utc) + timedelta(hours=12)]

    def assume(env):
        calls.append(env.function_version.id.function_name)
        return {"AccessKeyId": f"k{len(calls)}", "Expiration": expires[0]}

    get = lambda_credentials.cached_credentials(assume)
    first = get(environment("Delivery"))
    assert get(environment("Delivery")) is first
    get(environment("Notify"))
    assert calls == ["Delivery", "Notify"]
    # within an hour of expiry the next environment assumes the role again
    expires[0] = datetime.now(timezone.utc) + timedelta(minutes=30)
    lambda_credentials._cache.clear()
    get(environment("Delivery"))
    get(environment("Delivery"))
    assert calls == ["Delivery", "Notify", "Delivery", "Delivery"]
