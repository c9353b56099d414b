"""`@inject_faults`: failure injection for any lab function, configured at run time in SSM.

The configuration is read with Powertools Parameters from `/lab/faults/<FunctionName>` (override
with env `LAB_FAULTS_PARAMETER`) and cached in the environment for `LAB_FAULTS_CACHE_SECONDS`
(default 30 s): a `make chaos` change reaches every warm environment within 30 s, with no
redeploy. A missing parameter means no faults (its absence is cached too).

Why 30 s and not Powertools' 5 s: every environment polls on its own, and Parameter Store's
standard throughput is 40 transactions per second per account and region, shared by
GetParameter, GetParameters and GetParametersByPath (AWS Systems Manager service quotas). At the
seed's peak (about 900 environments in one account) a 5 s cache means 180 GetParameter/s, which
AWS would throttle; 30 s means 30/s, under the quota with the delivery function's own reads.
On the lab's machine the same polls were 0.73 SSM requests per order at a steady 5 orders/s
(about 2 ms of CPU per order, LocalStack and functions together); at 30 s they are a sixth.

The injector itself must never be the reason a function fails: a bad document or an SSM error is
logged and the handler runs unfaulted. Only the injected faults themselves escape.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import FaultConfig, FaultConfigError, ModeConfig, now_utc, parse_config
from .modes import (
    InjectedFault,
    corrupt,
    crash,
    denylisted,
    disk_filled,
    sleep_latency,
    sleep_past_timeout,
    status_code_response,
)

NAMESPACE = "ServerlessBoundaryLab"
PARAMETER_PREFIX = "/lab/faults/"
DEFAULT_CACHE_SECONDS = 30.0

_log = logging.getLogger("lab_faults")


def _emit(level: str, message: str, **fields: Any) -> None:
    """One JSON log line on stdout (what Lambda ships to CloudWatch Logs).

    Plain JSON rather than a Powertools Logger so we never reconfigure the function's own logger;
    `"lab_faults": true` is the key to filter injected faults from real ones.
    """
    record = {
        "level": level,
        "message": message,
        "lab_faults": True,
        "function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "timestamp": now_utc().isoformat(),
        **{k: v for k, v in fields.items() if v is not None},
    }
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def _count(mode: str) -> None:
    """EMF `FaultInjected` (Count, dimension `mode`) -> `emf_fault_injected_total{mode=...}`."""
    try:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        with single_metric(
            name="FaultInjected", unit=MetricUnit.Count, value=1, namespace=NAMESPACE
        ) as metric:
            metric.add_dimension(name="mode", value=mode)
        sys.stdout.flush()
    except Exception as exc:  # noqa: BLE001 - counting must not change the outcome
        _emit("WARNING", "lab_faults could not emit FaultInjected", error=str(exc))


def correlation_id_of(event: Any) -> str | None:
    """The order's correlation id wherever the lab's events carry it: `x-correlation-id` header,
    API Gateway request id (what NotificationFunction uses), EventBridge `detail.meta_data`, SQS
    record body (DeliveryFunction), or a top-level `correlation_id` of a direct invoke."""
    if not isinstance(event, dict):
        return None
    for key in ("correlation_id", "correlationId"):
        if isinstance(event.get(key), str):
            return event[key]
    headers = event.get("headers") or {}
    if isinstance(headers, dict):
        for name, value in headers.items():
            if name.lower() in ("x-correlation-id", "correlation-id") and isinstance(value, str):
                return value
    request_context = event.get("requestContext")
    if isinstance(request_context, dict) and isinstance(request_context.get("requestId"), str):
        return request_context["requestId"]
    for container in (event.get("meta_data"), event.get("detail"), event.get("body")):
        if isinstance(container, str):
            with contextlib.suppress(ValueError):
                container = json.loads(container)
        if isinstance(container, dict):
            found = correlation_id_of(container)
            if found:
                return found
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return correlation_id_of(records[0])
    return None


@dataclass
class _Cached:
    fetched_at: float
    raw: str | None
    config: FaultConfig | None


class FaultSource:
    """Reads and validates the fault document, caching both for `ttl` seconds."""

    def __init__(self, parameter: str, ttl: float) -> None:
        self.parameter = parameter
        self.ttl = ttl
        self._cached: _Cached | None = None
        self._provider: Any = None

    def _fetch_raw(self) -> str | None:
        from aws_lambda_powertools.utilities.parameters import SSMProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        if self._provider is None:
            self._provider = SSMProvider()
        try:
            # Powertools' own cache has the same TTL; ours additionally remembers absence
            return self._provider.get(self.parameter, max_age=int(self.ttl))
        except GetParameterError as exc:
            if "ParameterNotFound" in repr(exc.__cause__) or "ParameterNotFound" in str(exc):
                return None
            raise

    def current(self) -> FaultConfig | None:
        now = time.monotonic()
        if self._cached is not None and now - self._cached.fetched_at < self.ttl:
            return self._cached.config
        try:
            raw = self._fetch_raw()
        except Exception as exc:  # noqa: BLE001 - SSM trouble must not fail the function
            _emit("WARNING", "lab_faults config unavailable; running unfaulted",
                  parameter=self.parameter, error=f"{type(exc).__name__}: {exc}")
            self._cached = _Cached(time.monotonic(), None, None)
            return None
        config = None
        if raw is not None:
            try:
                config = parse_config(raw)
            except FaultConfigError as exc:
                _emit("ERROR", "lab_faults config rejected; running unfaulted",
                      parameter=self.parameter, error=str(exc))
        # stamped after the fetch: a slow SSM call must not eat the TTL it is meant to start
        self._cached = _Cached(time.monotonic(), raw, config)
        return config


def _default_parameter() -> str | None:
    """`LAB_FAULTS_PARAMETER`, else `/lab/faults/<function name>`; None outside Lambda (no
    function name: e.g. a unit test calling the handler), where there is nothing to read."""
    explicit = os.environ.get("LAB_FAULTS_PARAMETER")
    if explicit:
        return explicit
    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    return PARAMETER_PREFIX + name if name else None


def _cache_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("LAB_FAULTS_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)))
    except ValueError:
        return DEFAULT_CACHE_SECONDS


def plan(config: FaultConfig | None, event: Any, rng: random.Random) -> list[ModeConfig]:
    """The modes that fire on this invocation, in the fixed order (rate rolled per mode)."""
    if config is None:
        return []
    return [
        m for m in config.active_modes(now_utc()) if m.matches(event) and rng.random() < m.rate
    ]


def run_with_faults(
    handler: Callable[[Any, Any], Any],
    event: Any,
    context: Any,
    fired: list[ModeConfig],
    rng: random.Random,
) -> Any:
    """Apply the fired modes around one handler call, in MODE_ORDER (they arrive sorted)."""
    correlation_id = correlation_id_of(event)

    def note(mode: ModeConfig, **detail: Any) -> None:
        _emit("WARNING", f"lab_faults injected {mode.mode}", fault_mode=mode.mode,
              correlation_id=correlation_id, rate=mode.rate, **detail)
        _count(mode.mode)

    with contextlib.ExitStack() as stack:
        after: list[ModeConfig] = []
        for mode in fired:
            p = mode.params
            if mode.mode == "denylist":
                note(mode, hosts=[pattern.pattern for pattern in p["hosts"]])
                stack.enter_context(denylisted(p["hosts"]))
            elif mode.mode == "disk_space":
                note(mode, mb=p["mb"])
                stack.enter_context(disk_filled(p["mb"]))
            elif mode.mode == "latency":
                delay = rng.uniform(p["min_ms"], p["max_ms"])
                note(mode, latency_ms=round(delay, 1))
                sleep_latency(delay, delay, rng)
            elif mode.mode == "timeout":
                note(mode)
                sleep_past_timeout(context)
            elif mode.mode == "crash" and p["when"] == "before":
                note(mode, how=p["how"], when="before")
                crash(p["how"])
            elif mode.mode == "crash":
                after.append(mode)
            elif mode.mode == "exception":
                note(mode)
                raise InjectedFault(p["message"])
            elif mode.mode == "status_code":
                note(mode, status_code=p["status_code"])
                return status_code_response(p["status_code"], p["body"])
            elif mode.mode == "corruption":
                after.append(mode)
        response = handler(event, context)
    for mode in after:
        if mode.mode == "crash":
            note(mode, how=mode.params["how"], when="after")
            crash(mode.params["how"])
        note(mode, style=mode.params["style"])
        response = corrupt(response, mode.params["style"], rng)
    return response


def inject_faults(
    handler: Callable[[Any, Any], Any] | None = None,
    *,
    parameter: str | None = None,
    cache_seconds: float | None = None,
) -> Any:
    """Decorate a Lambda handler: `@inject_faults` or `@inject_faults(parameter="/lab/faults/x")`.

    Put it outermost so injected latency and errors are seen by everything the handler does.
    """

    def decorate(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        source: FaultSource | None = None
        rng = random.Random()

        @functools.wraps(func)
        def wrapper(event: Any, context: Any) -> Any:
            nonlocal source
            name = parameter or _default_parameter()
            if name is None:
                return func(event, context)
            # only the injector's own work is guarded; the handler runs outside this try, so a
            # real handler error is never mistaken for an injector error (nor run twice)
            try:
                if source is None or source.parameter != name:
                    source = FaultSource(
                        name, _cache_seconds() if cache_seconds is None else cache_seconds
                    )
                fired = plan(source.current(), event, rng)
            except Exception as exc:  # noqa: BLE001 - never let the injector break the function
                _emit("ERROR", "lab_faults failed; running unfaulted",
                      error=f"{type(exc).__name__}: {exc}")
                fired = []
            if not fired:
                return func(event, context)
            return run_with_faults(func, event, context, fired, rng)

        wrapper.lab_faults_source = lambda: source  # type: ignore[attr-defined] - for tests
        return wrapper

    if handler is not None:
        return decorate(handler)
    return decorate
