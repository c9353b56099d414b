"""LocalStack 4.14 as a host process (host mode), with state and logs under a project folder."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from labctl import processes
from lab_kernel import topologies
from lab_kernel.settings import STATE_DIR, Settings, SettingsError

HEALTH_PATH = "/_localstack/health"
# The services the lab uses (fewer services, faster start); `.env`'s LAB_LOCALSTACK_SERVICES, which
# compose reads too, names them. CloudFormation and S3 are there so a user's own SAM or
# CloudFormation app deploys into the lab (issue #18), Resource Groups for the group `sam init`'s
# templates declare (the seed repository's).
SERVICES = (
    "lambda,apigateway,events,sqs,ssm,secretsmanager,logs,cloudwatch,dynamodb,iam,sts,"
    "cloudformation,s3,resource-groups"
)


def account_limits(settings: Settings) -> str:
    """`LAB_ACCOUNT_CONCURRENCY_BY_ACCOUNT` for LocalStack (lab_platform/account_limits.py): each
    catalogue account whose limit is not the process's own (its `account_limit_setting` times its
    `account_limit_factor`), then the accounts `.env` names itself, which win."""
    from lab_platform.account_limits import AccountLimitError, parse, render

    default = settings.integer("LAB_ACCOUNT_CONCURRENCY", 1)
    limits = {t.account: t.account_limit(settings.integer(t.account_limit_setting, 1))
              for t in topologies.catalogue().topologies}
    limits = {account: limit for account, limit in limits.items() if limit != default}
    try:
        limits.update(parse(settings.get("LAB_ACCOUNT_CONCURRENCY_BY_ACCOUNT", "")))
    except AccountLimitError as error:
        raise SettingsError(f"{error} (.env or the environment)") from None
    return render(limits)


def lab_settings(settings: Settings) -> dict[str, str]:
    """LocalStack's settings for the lab, whatever runs it: host mode adds its own below, and
    the container tests pass exactly these to the lab's image (compose sets them from `.env`)."""
    return {
        "SERVICES": settings.get("LAB_LOCALSTACK_SERVICES", SERVICES),
        # Without internet the shutdown analytics step hangs SIGTERM: switch it off.
        "DISABLE_EVENTS": "1",
        # LocalStack's DNS server would try to bind port 53; the lab needs none.
        "DNS_ADDRESS": "0",
        "LAMBDA_RUNTIME_EXECUTOR": settings.get("LAMBDA_RUNTIME_EXECUTOR", "process"),
        "PROVIDER_OVERRIDE_DYNAMODB": settings.get("PROVIDER_OVERRIDE_DYNAMODB", "lab_moto"),
        "LOG_LEVEL_OVERRIDES": settings.get("LOG_LEVEL_OVERRIDES", ""),
        "IN_MEMORY_CLIENT": settings.get("IN_MEMORY_CLIENT", "1"),
        "SQS_DISABLE_CLOUDWATCH_METRICS": settings.get("SQS_DISABLE_CLOUDWATCH_METRICS", "1"),
        "LAMBDA_LIMITS_CONCURRENT_EXECUTIONS": str(settings.integer("LAB_ACCOUNT_CONCURRENCY", 1)),
        "LAB_ACCOUNT_CONCURRENCY_BY_ACCOUNT": account_limits(settings),
        # A stack's resource types LocalStack has no provider for (the seed's
        # AWS::ApplicationInsights::Application, a monitoring add-on) are skipped with a warning
        # instead of failing the stack; 4.14 does so by default and says later releases will not.
        "CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES": "1",
    }


def localstack_environment(settings: Settings, state_dir: Path, port: int) -> dict[str, str]:
    """Environment for a host-mode LocalStack; compose sets the same values from `.env`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCALSTACK_", "AWS_"))}
    env.update(
        {
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            # This machine has /.dockerenv; LocalStack would otherwise use /var/lib/localstack.
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(state_dir / "filesystem"),
            **lab_settings(settings),
        }
    )
    return env


def health(url: str) -> dict:
    with urllib.request.urlopen(url + HEALTH_PATH, timeout=2) as response:
        return json.load(response)


def is_ready(url: str) -> bool:
    services = health(url).get("services", {})
    return services.get("lambda") in ("available", "running")


def launch(settings: Settings, name: str = "localstack", port_key: str = "LAB_LOCALSTACK_PORT") -> tuple[processes.ManagedProcess, str]:
    """Start one LocalStack in the background; its state in .lab/NAME/. Returns it and its URL."""
    port = settings.port(port_key)
    state_dir = STATE_DIR / name
    state_dir.mkdir(parents=True, exist_ok=True)
    env = localstack_environment(settings, state_dir, port)
    process = processes.start(name, [sys.executable, "-m", "localstack.runtime.main"], env=env)
    return process, f"http://127.0.0.1:{port}"


def start_all(settings: Settings, timeout: float = 90.0) -> list[processes.ManagedProcess]:
    """Every LocalStack of the lab (one per topology by default), started together."""
    began = time.monotonic()
    started = [launch(settings, name, key) for name, key in settings.localstack_instances().items()]
    for process, url in started:
        processes.wait_until(lambda url=url: is_ready(url), f"LocalStack on {url}", timeout, process)
        # from the common launch, not from the end of the previous wait
        print(f"  LocalStack 4.14.0 on {url} healthy after {time.monotonic() - began:.1f} s "
              f"(log: {process.log_file})", flush=True)
    return [process for process, _ in started]
