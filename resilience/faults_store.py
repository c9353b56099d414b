"""Fault documents in SSM Parameter Store (`/lab/faults/<FunctionName>`), read and written by the
CLIs; every write is validated with the injector's own parser first."""

from __future__ import annotations

import json
from typing import Any

from lab_faults import PARAMETER_PREFIX, FaultConfigError, parse_config


def parameter_name(function_name: str) -> str:
    return PARAMETER_PREFIX + function_name


def read(ssm: Any, function_name: str) -> dict[str, Any] | None:
    try:
        raw = ssm.get_parameter(Name=parameter_name(function_name))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return {"_unparseable": raw}
    return document if isinstance(document, dict) else {"_unparseable": raw}


def write(ssm: Any, function_name: str, document: dict[str, Any]) -> None:
    """Validate, then store. Raises FaultConfigError with the validator's message."""
    parse_config(document)
    ssm.put_parameter(
        Name=parameter_name(function_name),
        Value=json.dumps(document, sort_keys=True),
        Type="String",
        Overwrite=True,
        Description="lab_faults configuration (python -m resilience.chaos)",
    )


def delete(ssm: Any, function_name: str) -> bool:
    try:
        ssm.delete_parameter(Name=parameter_name(function_name))
        return True
    except ssm.exceptions.ParameterNotFound:
        return False


def list_all(ssm: Any) -> dict[str, str]:
    """Function name -> raw document, for every fault parameter in the account."""
    found: dict[str, str] = {}
    paginator = ssm.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=PARAMETER_PREFIX.rstrip("/"), Recursive=True):
        for parameter in page.get("Parameters", []):
            found[parameter["Name"][len(PARAMETER_PREFIX):]] = parameter["Value"]
    return found


def describe(raw: str) -> list[str]:
    """Human lines for `status`: each mode with its settings, marked expired/disabled/rejected."""
    try:
        config = parse_config(raw)
    except FaultConfigError as exc:
        return [f"REJECTED (functions run unfaulted): {exc}"]
    from lab_faults.config import now_utc

    now = now_utc()
    active = {m.mode for m in config.active_modes(now)}
    lines = []
    if not config.enabled:
        lines.append("disabled (enabled=false)")
    if config.expires_at:
        lines.append(f"document expires {config.expires_at.isoformat()}")
    for mode in config.modes:
        params = {
            k: ([p.pattern for p in v] if k == "hosts" else v) for k, v in mode.params.items()
        }
        state = "ACTIVE " if mode.mode in active else "expired" if not mode.active(now) else "off    "
        extra = f" until {mode.expires_at.isoformat()}" if mode.expires_at else ""
        match = f" match={[r.path for r in mode.match]}" if mode.match else ""
        lines.append(f"{state} {mode.mode:<11} rate={mode.rate:g} {json.dumps(params)}{match}{extra}")
    return lines or ["(no modes)"]
