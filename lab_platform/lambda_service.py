"""The LocalStack Lambda service object, for patches that invoke functions in process.

`LambdaService` is created by the Lambda provider when the service loads (after our hooks ran);
wrapping its `__init__` records it. Its `invoke` is what the Invoke API handler calls after
parsing the HTTP request, so calling it directly keeps Lambda's validation, concurrency leases,
throttles and async queue, without an HTTP round trip through LocalStack's own gateway.
"""

from __future__ import annotations

import io
import threading
from typing import Any

from localstack.aws.api.lambda_ import TooManyRequestsException
from localstack.services.lambda_.api_utils import function_locators_from_arn
from localstack.services.lambda_.event_source_mapping.senders.sender import SenderError
from localstack.services.lambda_.invocation.lambda_service import LambdaService
from localstack.utils.patch import Patch
from localstack.utils.strings import long_uid, to_bytes
from localstack.utils.xray.trace_header import TraceHeader

_services: list[LambdaService] = []
_lock = threading.Lock()


def _init(fn, self: LambdaService, *args: Any, **kwargs: Any) -> None:
    fn(self, *args, **kwargs)
    with _lock:
        _services.append(self)
        del _services[:-1]  # a restarted provider replaces the service


_CAPTURE = Patch.function(LambdaService.__init__, _init)


def capture() -> None:
    """Start recording the service (idempotent; call from every hook that needs it)."""
    _CAPTURE.apply()


def current() -> LambdaService | None:
    return _services[-1] if _services else None


def all_services() -> list[LambdaService]:
    return list(_services)


ESM_USER_AGENT = "lambda.amazonaws.com (event source mapping)"


def invoke_in_process(
    service: LambdaService,
    name: str,
    qualifier: str | None,
    region: str,
    account: str,
    payload: str | bytes,
    user_agent: str,
    invocation_type: str = "RequestResponse",
    request_id: str | None = None,
):
    """`LambdaService.invoke` as LocalStack's Invoke handler calls it, for a caller in this process
    (`user_agent` names it); refusals (throttle, not found...) are raised as LocalStack raises them."""
    return service.invoke(
        function_name=name,
        qualifier=qualifier,
        region=region,
        account_id=account,
        invocation_type=invocation_type,
        client_context=None,
        request_id=request_id or long_uid(),
        payload=to_bytes(payload),
        trace_context={"aws_trace_header": TraceHeader().ensure_root_exists()},
        user_agent=user_agent,
    )


class InProcessLambdaClient:
    """The subset of a boto3 Lambda client that LocalStack's ESM `LambdaSender` uses (`invoke`),
    answered by `LambdaService.invoke` in this process. A throttle is raised as the `SenderError`
    a failed target raises (cause: the `TooManyRequestsException`), so the ESM processor treats it
    as a failed batch instead of logging an "unhandled exception" per throttle."""

    def invoke(
        self,
        FunctionName: str,  # noqa: N803 - boto3's parameter names
        Payload: str | bytes = b"{}",  # noqa: N803
        InvocationType: str = "RequestResponse",  # noqa: N803
        Qualifier: str | None = None,  # noqa: N803
        **_: Any,
    ) -> dict[str, Any]:
        service = current()
        if service is None:
            raise RuntimeError("the Lambda service is not running")
        name, qualifier, account, region = function_locators_from_arn(FunctionName)
        if not (name and account and region):
            raise ValueError(f"in-process invoke needs a full function ARN, got {FunctionName!r}")
        request_id = long_uid()
        try:
            result = invoke_in_process(service, name, Qualifier or qualifier, region, account, Payload,
                                       ESM_USER_AGENT, InvocationType, request_id)
        except TooManyRequestsException as throttle:
            raise SenderError(
                f"Rate Exceeded invoking {FunctionName}",
                error={
                    "message": str(throttle),
                    "httpStatusCode": 429,
                    "awsService": "lambda",
                    "requestId": request_id,
                    "exceptionType": "TooManyRequestsException",
                    "resourceArn": FunctionName,
                },
            ) from throttle
        if result is None:  # Event / DryRun
            return {
                "StatusCode": 202,
                "Payload": io.BytesIO(b""),
                "ResponseMetadata": {"RequestId": request_id},
            }
        response: dict[str, Any] = {
            "StatusCode": 200,
            "Payload": io.BytesIO(result.payload or b""),
            "ExecutedVersion": result.executed_version,
            "ResponseMetadata": {"RequestId": request_id},
        }
        if result.is_error:
            response["FunctionError"] = "Unhandled"
        return response
