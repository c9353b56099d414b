"""API Gateway Count / 4XXError / 5XXError / 429 / Latency per API, stage, resource and method.

AWS publishes these per API and stage (and per resource and method with detailed metrics).
LocalStack 4.14 publishes none. Wrapping `RestApiGateway.process_with_context` sees every REST API
(v1) request from arrival to the final response, including 403s and 429s.
"""

from __future__ import annotations

import time
from typing import Any

from localstack.services.apigateway.next_gen.execute_api.gateway import RestApiGateway
from localstack.utils.patch import Patches

from lab_platform.metrics import registry as m


def _labels(context: Any) -> dict[str, str]:
    deployment = context.deployment
    api_name = ""
    if deployment is not None:
        api_name = (deployment.rest_api.rest_api or {}).get("name") or ""
    return {
        "account": context.account_id or "",
        "region": context.region or "",
        "api_name": api_name,
        "api_id": context.api_id or "",
        "stage": context.stage or "",
        "resource": (context.resource or {}).get("path") or "",
        "method": (context.resource_method or {}).get("httpMethod") or context.request.method,
    }


def _process_with_context(fn, self, context, response) -> None:
    started = time.perf_counter()
    try:
        fn(self, context, response)
    finally:
        labels = _labels(context)
        status = response.status_code
        m.apigateway_latency.labels(**labels).observe(time.perf_counter() - started)
        m.apigateway_requests.labels(**labels, status_class=m.status_class(status)).inc()
        if status == 429:
            m.apigateway_throttled.labels(**labels).inc()


def patches() -> Patches:
    p = Patches()
    p.function(RestApiGateway.process_with_context, _process_with_context)
    return p
