"""LocalStack `on_infra_start` hooks that apply the lab's platform-fidelity patches.

Registered as plux entry points in pyproject.toml (namespace `localstack.hooks.on_infra_start`);
they run in the LocalStack process before any service is loaded, so every patched class is
patched before its first instance exists. Each patch can be switched off (lab_platform/settings).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from localstack.runtime import hooks
from localstack.utils.patch import Patches

from lab_platform import settings

LOG = logging.getLogger(__name__)


def _apply(toggle: str, build: Callable[[], Patches]) -> None:
    if not settings.enabled(toggle):
        LOG.info("lab platform: %s off (%s=0)", settings.TOGGLES[toggle], toggle)
        return
    build().apply()
    LOG.info("lab platform: %s on", settings.TOGGLES[toggle])


@hooks.on_infra_start()
def lab_metrics() -> None:
    from lab_platform.metrics import (
        apigateway_hooks,
        collectors,
        endpoint,
        events_hooks,
        lambda_hooks,
    )

    def build() -> Patches:
        collectors.register()
        endpoint.register_route()
        p = Patches()
        for module in (lambda_hooks, apigateway_hooks, events_hooks):
            p.patches.extend(module.patches().patches)
        return p

    _apply("LAB_PATCH_METRICS", build)


@hooks.on_infra_start()
def lab_apigateway_throttling() -> None:
    from lab_platform.apigateway import patch

    _apply("LAB_PATCH_APIGW_THROTTLING", patch.patches)


@hooks.on_infra_start()
def lab_apigateway_lambda_integration() -> None:
    from lab_platform.apigateway import lambda_integration

    _apply("LAB_PATCH_APIGW_LAMBDA_NO_RETRY", lambda_integration.patches)


@hooks.on_infra_start()
def lab_apigateway_raw_body() -> None:
    from lab_platform.apigateway import request_body

    _apply("LAB_PATCH_APIGW_RAW_BODY", request_body.patches)


@hooks.on_infra_start()
def lab_apigateway_payload_limit() -> None:
    from lab_platform.apigateway import payload_limit

    _apply("LAB_PATCH_APIGW_PAYLOAD_LIMIT", payload_limit.patches)


@hooks.on_infra_start()
def lab_lambda_payload_limit() -> None:
    from lab_platform import lambda_payload

    _apply("LAB_PATCH_LAMBDA_PAYLOAD_LIMIT", lambda_payload.patches)


@hooks.on_infra_start()
def lab_lambda_runtime_check() -> None:
    from localstack import config

    from lab_platform.executor import interpreters, runtime_check

    _apply("LAB_PATCH_LAMBDA_RUNTIME_CHECK", runtime_check.patches)
    if config.LAMBDA_RUNTIME_EXECUTOR == "process":
        # which runtimes this machine serves, and on what, said once at start-up
        LOG.info("lab platform: Lambda runtimes here: %s", interpreters.describe_served())


@hooks.on_infra_start()
def lab_apigateway_lambda_in_process() -> None:
    from lab_platform.apigateway import lambda_integration

    _apply("LAB_PATCH_APIGW_LAMBDA_IN_PROCESS", lambda_integration.in_process_patches)


@hooks.on_infra_start()
def lab_sqs_esm_scaling() -> None:
    from lab_platform.sqs_esm import scaling

    _apply("LAB_PATCH_SQS_ESM_SCALING", scaling.patches)


@hooks.on_infra_start()
def lab_async_scaling() -> None:
    from lab_platform.async_invoke import scaling

    _apply("LAB_PATCH_ASYNC_SCALING", scaling.patches)


@hooks.on_infra_start()
def lab_events_lambda_target() -> None:
    from lab_platform.async_invoke import events_target

    _apply("LAB_PATCH_EVENTS_LAMBDA_TARGET", events_target.patches)


@hooks.on_infra_start()
def lab_events_api_destination() -> None:
    from lab_platform.api_destination import patch

    _apply("LAB_PATCH_EVENTS_API_DESTINATION", patch.patches)


@hooks.on_infra_start()
def lab_emf() -> None:
    from lab_platform.emf import patch

    _apply("LAB_PATCH_EMF", patch.patches)


@hooks.on_infra_start()
def lab_keepalive_sweeper() -> None:
    from lab_platform import keepalive

    _apply("LAB_PATCH_KEEPALIVE_SWEEPER", keepalive.patches)


@hooks.on_infra_start()
def lab_request_cost() -> None:
    from lab_platform import request_cost

    _apply("LAB_PATCH_REQUEST_COST", request_cost.patches)


@hooks.on_infra_start()
def lab_cloudwatch_batch() -> None:
    from lab_platform import cloudwatch_store

    _apply("LAB_PATCH_CLOUDWATCH_BATCH", cloudwatch_store.patches)


@hooks.on_infra_start()
def lab_cloudwatch_direct() -> None:
    from lab_platform import cloudwatch_publish

    _apply("LAB_PATCH_CLOUDWATCH_DIRECT", cloudwatch_publish.patches)


@hooks.on_infra_start()
def lab_cpu_accounting() -> None:
    from lab_platform import cpu_accounting

    _apply("LAB_PATCH_CPU_ACCOUNTING", cpu_accounting.patches)


@hooks.on_infra_start()
def lab_sqs_delays_on_time() -> None:
    from lab_platform import sqs_delays

    _apply("LAB_PATCH_SQS_DELAYS_ON_TIME", sqs_delays.patches)


@hooks.on_infra_start()
def lab_cfn_reserved_concurrency() -> None:
    from lab_platform import cfn_reserved_concurrency

    _apply("LAB_PATCH_CFN_RESERVED_CONCURRENCY", cfn_reserved_concurrency.patches)


@hooks.on_infra_start()
def lab_cfn_event_invoke_config() -> None:
    from lab_platform import cfn_event_invoke_config

    _apply("LAB_PATCH_CFN_EVENT_INVOKE_CONFIG", cfn_event_invoke_config.patches)


@hooks.on_infra_start()
def lab_account_limits() -> None:
    from lab_platform import account_limits

    _apply("LAB_PATCH_ACCOUNT_LIMITS", account_limits.patches)


@hooks.on_infra_start()
def lab_alias_invoke_config() -> None:
    from lab_platform import alias_invoke_config

    _apply("LAB_PATCH_ALIAS_INVOKE_CONFIG", alias_invoke_config.patches)
