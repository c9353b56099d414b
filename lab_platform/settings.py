"""Toggles for the platform-fidelity patches, read from the LocalStack process environment.

Every patch is on by default; set its variable to `0` (or `false`, `no`, `off`) to get LocalStack
4.14's own behaviour back, e.g. to measure what a patch changes. The variables are documented in
`lab_platform/README.md`.
"""

from __future__ import annotations

import os

FALSE_VALUES = frozenset({"0", "false", "no", "off"})

# name -> what the toggle switches
TOGGLES: dict[str, str] = {
    "LAB_PATCH_APIGW_THROTTLING": "API Gateway usage-plan and stage throttling, quotas",
    "LAB_PATCH_APIGW_LAMBDA_NO_RETRY": "API Gateway invokes a Lambda integration once (throttle: 500)",
    "LAB_PATCH_APIGW_RAW_BODY": "API Gateway passes the request body as sent, form-encoded too",
    "LAB_PATCH_APIGW_LAMBDA_IN_PROCESS": "API Gateway invokes a Lambda integration in process, no client",
    "LAB_PATCH_APIGW_PAYLOAD_LIMIT": "API Gateway answers 413 to a body over 10 MB",
    "LAB_PATCH_LAMBDA_PAYLOAD_LIMIT": "Lambda refuses a synchronous payload over 6 MB (413)",
    "LAB_PATCH_LAMBDA_RUNTIME_CHECK": "Lambda refuses a runtime the process executor cannot serve, at creation",
    "LAB_PATCH_SQS_ESM_SCALING": "SQS event source mapping concurrency",
    "LAB_PATCH_ASYNC_SCALING": "asynchronous invocation scale-out and throttle retries",
    "LAB_PATCH_EVENTS_LAMBDA_TARGET": "EventBridge -> Lambda targets queued in process",
    "LAB_PATCH_EVENTS_API_DESTINATION": "EventBridge API destinations: rate limit, retries, dead-letter queue",
    "LAB_PATCH_EMF": "Embedded Metric Format extraction from logs",
    "LAB_PATCH_METRICS": "platform metrics at /_lab/metrics",
    "LAB_PATCH_KEEPALIVE_SWEEPER": "idle environments expire via one sweeper thread",
    "LAB_PATCH_REQUEST_COST": "no Twisted form parsing, cached moto method lists",
    "LAB_PATCH_CLOUDWATCH_BATCH": "one SQLite transaction per PutMetricData call",
    "LAB_PATCH_CLOUDWATCH_DIRECT": "the platform's own metrics written into CloudWatch's store, no request",
    "LAB_PATCH_SQS_DELAYS_ON_TIME": "SQS delayed messages visible at their own due time, not on a 1 s tick",
    "LAB_PATCH_CFN_RESERVED_CONCURRENCY": "CloudFormation sets a function's ReservedConcurrentExecutions",
    "LAB_PATCH_CFN_EVENT_INVOKE_CONFIG": "CloudFormation updates an AWS::Lambda::EventInvokeConfig in place",
    "LAB_PATCH_ALIAS_INVOKE_CONFIG": "an async invoke of an alias follows the alias's event invoke config",
    "LAB_PATCH_CPU_ACCOUNTING": "LocalStack's CPU per service and thread kind at /_lab/cpu",
    "LAB_PATCH_ACCOUNT_LIMITS": "each account's own concurrency limit (LAB_ACCOUNT_CONCURRENCY_BY_ACCOUNT)",
}


class SettingError(ValueError):
    """A lab platform setting is malformed."""


def enabled(name: str, environ: dict[str, str] | None = None) -> bool:
    """Whether the toggle `name` is on (default on)."""
    if name not in TOGGLES:
        raise SettingError(f"unknown lab platform toggle {name}: known are {', '.join(TOGGLES)}")
    raw = (environ if environ is not None else os.environ).get(name, "1").strip().lower()
    return raw not in FALSE_VALUES


def number(name: str, default: float, environ: dict[str, str] | None = None) -> float:
    """A positive number setting, with a one-line error when malformed."""
    raw = (environ if environ is not None else os.environ).get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SettingError(f"{name}={raw!r} must be > 0")
    return value
