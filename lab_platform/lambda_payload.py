"""Lambda refuses a synchronous invocation whose payload is over 6 MB.

AWS: "Invocation payload (request and response): 6 MB each for synchronous" (Lambda developer
guide, "Lambda quotas"); Invoke then fails with `RequestEntityTooLargeException` (HTTP 413),
"Request must be smaller than 6291456 bytes for the InvokeFunction operation". Behind a REST API's
Lambda proxy integration the invocation fails, and API Gateway answers 500
`{"message": "Internal server error"}`, as for any Lambda error that is not the function's own
(`apigateway/lambda_integration.py`).
LocalStack 4.14: the limit lives in its runtime images (`LOCALSTACK_MAX_PAYLOAD_SIZE` for the
Lambda runtime interface emulator), so a runtime executor without them (the lab's process
executor) ran the function with a 7 MB event.
Here: `LambdaService.invoke`, which every synchronous caller goes through (the Invoke API, API
Gateway, SQS mappings), refuses a larger payload first. Asynchronous invocations keep LocalStack's
own handling.
"""

from __future__ import annotations

from localstack.services.lambda_.invocation.lambda_models import RequestEntityTooLargeException
from localstack.services.lambda_.invocation.lambda_service import LambdaService
from localstack.utils.patch import Patches

MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024  # 6 MiB, the figure in AWS's own error message
SYNC = "RequestResponse"


def refusal(payload: bytes | None, invocation_type: str | None) -> str | None:
    """The error message for an oversized synchronous payload, None when it may run."""
    if (invocation_type or SYNC) != SYNC or payload is None or len(payload) <= MAX_SYNC_PAYLOAD_BYTES:
        return None
    return f"Request must be smaller than {MAX_SYNC_PAYLOAD_BYTES} bytes for the InvokeFunction operation"


def _invoke(fn, self, function_name, qualifier, region, account_id, invocation_type, client_context,
            request_id, payload, *args, **kwargs):
    message = refusal(payload, invocation_type)
    if message is not None:
        raise RequestEntityTooLargeException(message)
    return fn(self, function_name, qualifier, region, account_id, invocation_type, client_context,
              request_id, payload, *args, **kwargs)


def patches() -> Patches:
    p = Patches()
    p.function(LambdaService.invoke, _invoke)
    return p
