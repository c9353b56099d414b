"""Which API Gateway integration failures are a Lambda throttle (answered 500, as AWS does)."""

from __future__ import annotations

from botocore.exceptions import ClientError
from localstack.services.apigateway.next_gen.execute_api.gateway_response import IntegrationFailureError

from lab_platform.apigateway.lambda_integration import NO_RETRY, rejected_invoke


def failure(code: str | None) -> IntegrationFailureError:
    error = IntegrationFailureError("Internal server error", status_code=502)
    if code:
        error.__cause__ = ClientError({"Error": {"Code": code, "Message": "x"}}, "Invoke")
    return error


def test_only_a_throttled_invoke_is_a_rejected_invoke():
    assert rejected_invoke(failure("TooManyRequestsException"))
    assert not rejected_invoke(failure("AccessDeniedException"))
    assert not rejected_invoke(failure("ResourceNotFoundException"))
    assert not rejected_invoke(failure(None))


def test_the_integration_client_makes_one_attempt():
    assert NO_RETRY.retries == {"total_max_attempts": 1}
