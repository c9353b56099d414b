"""Gather the capacity preview's numbers from the real configuration, never from constants here.

- the load profile: `load/profiles.toml` through the load package;
- tenacity's policy and the HTTP timeout: read from the delivery function's code (its AST), since
  the code is where that configuration lives;
- the courier's failure rate and latency: sampled from the courier's own profile functions, with
  the profile the deployed function runs (env `COURIER_PROFILE`);
- function timeout, usage plan, account limit, async retries, ESM maximum concurrency: asked of
  the running LocalStack, i.e. what bootstrap actually deployed.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from lab_kernel.settings import REPO_ROOT
from report.capacity import CapacityInputs, Phase, Retry
from lab_kernel.endpoints import Endpoints
from lab_kernel.topologies import catalogue

DELIVERY_CODE = REPO_ROOT / "lambdas" / "delivery" / "app.py"
COURIER_CODE = REPO_ROOT / "lambdas" / "slow_api" / "app.py"


class ConfigError(RuntimeError):
    pass


def _literal(node: ast.AST, constants: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    return ast.literal_eval(node)


def tenacity_policy(path: Path = DELIVERY_CODE) -> tuple[Retry, float | None]:
    """(retry policy, courier call timeout) as written in the delivery function's code."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: the delivery function is not in this checkout") from None
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    calls: dict[str, list[Any]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("stop_after_attempt", "wait_fixed", "wait_random"):
                args = [_literal(a, constants) for a in node.args]
                args += [_literal(k.value, constants) for k in node.keywords]
                calls.setdefault(node.func.id, args)
    if "stop_after_attempt" not in calls:
        raise ConfigError(f"{path}: no stop_after_attempt(...) found; the preview needs tenacity's policy")
    fixed = float((calls.get("wait_fixed") or [0])[0])
    rand = calls.get("wait_random") or [0, 0]
    retry = Retry(int(calls["stop_after_attempt"][0]), fixed, float(rand[0]), float(rand[1] if len(rand) > 1 else rand[0]))
    timeout = constants.get("HTTP_TIMEOUT_SECONDS")
    if isinstance(timeout, (tuple, list)):
        timeout = float(timeout[-1])  # requests' (connect, read): the read timeout bounds a call
    return retry, (float(timeout) if isinstance(timeout, (int, float)) else None)


def courier_behaviour(profile: str, path: Path = COURIER_CODE, samples: int = 20000) -> tuple[float, float, float]:
    """(failure rate, fastest, slowest success seconds), sampled from the courier's own code.

    The module is loaded under a private name with a region set, because it builds a boto3
    client at import; a fixed seed makes the estimate reproducible.
    """
    if not path.exists():
        raise ConfigError(f"{path} not found: the courier function is not in this checkout")
    saved = {k: os.environ.get(k) for k in ("AWS_DEFAULT_REGION", "COURIER_PROFILE")}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["COURIER_PROFILE"] = profile
    # lab_faults and lab_breaker, which every function zip carries, are installed in the lab's
    # environment (pyproject.toml), so the module imports them as it does on AWS
    try:
        spec = importlib.util.spec_from_file_location("_lab_courier_for_preview", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while defining
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - any import failure is a configuration problem
        raise ConfigError(f"cannot load {path} to read the courier profile: {error}") from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sys.modules.pop("_lab_courier_for_preview", None)
    chosen = module.PROFILES.get(profile)
    if chosen is None:
        raise ConfigError(f"courier profile {profile!r} unknown: {sorted(module.PROFILES)}")
    rng = random.Random(7)
    failures = sum(1 for _ in range(samples) if chosen.fails(rng))
    delays = [chosen.delay_seconds(rng) for _ in range(samples)]
    return failures / samples, min(delays), max(delays)


def load_phases(profile: str) -> tuple[Phase, ...]:
    from load.profiles import ProfileError, get_profile

    try:
        p = get_profile(profile)
    except ProfileError as error:
        raise ConfigError(str(error)) from None
    return tuple(Phase(ph.name, ph.duration, ph.start_rate, ph.end_rate) for ph in p.phases)


def live_config(endpoints: Endpoints) -> dict[str, Any]:
    """What bootstrap deployed: read back through the AWS APIs of each topology's account."""
    from report.aws_state import client

    out: dict[str, Any] = {}
    nfc = endpoints.topology(catalogue().storm)
    fc = endpoints.topology(catalogue().remedy)
    lam = client(endpoints, nfc, "lambda")
    delivery = lam.get_function_configuration(FunctionName=nfc.functions["delivery"])
    out["function_timeout"] = float(delivery["Timeout"])
    out["delivery_memory"] = delivery.get("MemorySize")
    courier = lam.get_function_configuration(FunctionName=nfc.functions["courier"])
    out["courier_profile"] = (courier.get("Environment") or {}).get("Variables", {}).get("COURIER_PROFILE", "seed")
    out["runtime"] = delivery.get("Runtime")
    try:
        out["async_retries"] = int(
            lam.get_function_event_invoke_config(FunctionName=nfc.functions["delivery"]).get("MaximumRetryAttempts", 2)
        )
    except lam.exceptions.ResourceNotFoundException:
        out["async_retries"] = 2  # AWS's default when no event invoke config is set
    out["account_limit"] = int(lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"])
    apigw = client(endpoints, nfc, "apigateway")
    plans = apigw.get_usage_plans().get("items", [])
    throttled = [p for p in plans if p.get("throttle")]
    if not throttled:
        raise ConfigError(f"no usage plan with a throttle in the {nfc.name} account: run `make bootstrap`")
    out["courier_rate"] = float(throttled[0]["throttle"].get("rateLimit", 0))
    out["courier_burst"] = float(throttled[0]["throttle"].get("burstLimit", 0))
    fc_lam = client(endpoints, fc, "lambda")
    mappings = fc_lam.list_event_source_mappings(FunctionName=fc.functions["delivery"]).get("EventSourceMappings", [])
    if not mappings:
        raise ConfigError(f"no event source mapping on the {fc.name} delivery function: run `make bootstrap`")
    out["esm_max_concurrency"] = int((mappings[0].get("ScalingConfig") or {}).get("MaximumConcurrency", 1000))
    queue_url = fc.queues.get("delivery")
    if queue_url:
        attrs = client(endpoints, fc, "sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
        )["Attributes"]
        out["queue_visibility_timeout"] = float(attrs["VisibilityTimeout"])
        if "RedrivePolicy" in attrs:
            out["max_receive_count"] = int(json.loads(attrs["RedrivePolicy"])["maxReceiveCount"])
    return out


def gather(profile: str, endpoints: Endpoints) -> CapacityInputs:
    live = live_config(endpoints)
    retry, http_timeout = tenacity_policy()
    failure, lat_min, lat_max = courier_behaviour(live["courier_profile"])
    rel = lambda p: str(p.relative_to(REPO_ROOT))  # noqa: E731
    return CapacityInputs(
        profile=profile,
        phases=load_phases(profile),
        function_timeout=live["function_timeout"],
        retry=retry,
        courier_rate=live["courier_rate"],
        courier_burst=live["courier_burst"],
        courier_failure_rate=failure,
        courier_latency_min=lat_min,
        courier_latency_max=lat_max,
        account_limit=live["account_limit"],
        async_retries=live["async_retries"],
        esm_max_concurrency=live["esm_max_concurrency"],
        http_timeout=http_timeout,
        queue_visibility_timeout=live.get("queue_visibility_timeout", 150.0),
        max_receive_count=live.get("max_receive_count", 5),
        sources={
            "phases": f"load/profiles.toml [{profile}]",
            "retry, HTTP timeout": rel(DELIVERY_CODE),
            "courier failure/latency": f"{rel(COURIER_CODE)} profile {live['courier_profile']!r} (sampled)",
            "timeout, limit, usage plan, retries, ESM, queue": f"deployed config at {endpoints.localstack_url}",
        },
    )
