"""Which API Gateway integration failures are the Lambda API refusing the invoke (answered 500, as
AWS does): a throttle, a payload over 6 MB, a missing function; not a function's own failure."""

from __future__ import annotations

from botocore.exceptions import ClientError
from localstack.services.apigateway.next_gen.execute_api.gateway_response import IntegrationFailureError

from lab_platform.apigateway.lambda_integration import NO_RETRY, rejected_invoke


def failure(code: str | None) -> IntegrationFailureError:
    error = IntegrationFailureError("Internal server error", status_code=502)
    if code:
        error.__cause__ = ClientError({"Error": {"Code": code, "Message": "x"}}, "Invoke")
    return error


def test_every_refusal_of_the_lambda_api_is_a_rejected_invoke_and_nothing_else():
    for code in ("TooManyRequestsException", "RequestEntityTooLargeException", "ResourceNotFoundException",
                 "AccessDeniedException"):
        assert rejected_invoke(failure(code)), code
    assert not rejected_invoke(failure(None))  # e.g. the function's response could not be parsed


def test_the_integration_client_makes_one_attempt():
    assert NO_RETRY.retries == {"total_max_attempts": 1}
