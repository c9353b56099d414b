"""botocore service models built once per service, not once per request.

LocalStack 4.14's `load_service` builds a new botocore `ServiceModel` on every call, and the
moto fall-through (`create_aws_request_context`, used by SSM, Secrets Manager, IAM, STS and the
lab's DynamoDB) calls it for every request. An error answer then walks every shape of that fresh
model again to find the error's shape: under the lab's load, SSM ParameterNotFound answers alone
held the GIL 12% of the time (py-spy --gil), and one cost LocalStack 22.6 ms of CPU against 8.0 ms
with this cache (200 calls each). Service models are read-only descriptions, so one per
(service, version, protocol) serves every request. `LAB_PATCH_SERVICE_MODEL_CACHE=0` turns it off.
"""

from __future__ import annotations

import functools
import logging
import os
import sys

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)

# Modules that imported `load_service` by name before this hook ran; later imports get the
# cached function from localstack.aws.spec itself.
IMPORTERS = (
    "localstack.aws.forwarder",
    "localstack.aws.protocol.serializer",
    "localstack.aws.skeleton",
    "localstack.services.plugins",
    "localstack.services.sqs.provider",
    "localstack.services.sqs.query_api",
    "localstack.services.lambda_.provider",
)


def cached(load_service):
    @functools.lru_cache(maxsize=512)
    def load_service_cached(service, version=None, protocol=None):
        return load_service(service, version, protocol)

    @functools.wraps(load_service)
    def wrapper(service, version=None, protocol=None):
        return load_service_cached(service, version, protocol)

    wrapper.cache_info = load_service_cached.cache_info
    return wrapper


@hooks.on_infra_start()
def lab_service_model_cache() -> None:
    if os.environ.get("LAB_PATCH_SERVICE_MODEL_CACHE", "1").strip().lower() in {"0", "false", "no", "off"}:
        return
    from localstack.aws import spec

    if hasattr(spec.load_service, "cache_info"):
        return
    spec.load_service = cached(spec.load_service)
    for name in IMPORTERS:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "load_service"):
            module.load_service = spec.load_service
    LOG.info("lab platform: botocore service models cached")
