"""API Gateway calls a Lambda integration once: a throttled function is a 500 at once, no retry.

AWS: "If the Lambda API rejects the invocation request, API Gateway returns a 500 error code ...
API Gateway does not retry any Lambda invocations." (Lambda developer guide, "Handling Lambda
errors with an API Gateway API", services-apigateway-errors). A function throttled by its
account's concurrency limit therefore costs one Invoke, one Throttle and a fast 500
`{"message": "Internal server error"}`.
LocalStack 4.14: `RestApiAwsProxyIntegration.call_lambda` invokes through an internal boto3
client with botocore's default (legacy) retries: a throttled invoke (429) is retried 4 more times
with random exponential back-off (up to 1 + 2 + 4 + 8 s), then answered 502. Measured here: a
call to a throttled function took 8.1-9.1 s and counted 5 Lambda throttles, where AWS counts 1.
In the retry storm this stretched every courier call the courier's own function throttled to
seconds (calls that then succeeded late, past the delivery function's 12 s read timeout: the
order was retried and scheduled twice), and the notify handler's throttles counted 5-7 times.
Here: the Lambda client API Gateway uses makes one attempt, and a rejected invoke
(TooManyRequestsException) answers 500 as on AWS. Function errors keep LocalStack's 502.
"""

from __future__ import annotations

from botocore.config import Config
from botocore.exceptions import ClientError
from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
    IntegrationFailureError,
)
from localstack.services.apigateway.next_gen.execute_api.integrations import aws as integrations
from localstack.utils.patch import Patches

# botocore counts the first call: total_max_attempts=1 is "no retry" in every retry mode.
NO_RETRY = Config(retries={"total_max_attempts": 1})


def _get_service_factory(fn, region_name: str, role_arn: str):
    if role_arn:
        return integrations.connect_to.with_assumed_role(
            role_arn=role_arn,
            region_name=region_name,
            service_principal=integrations.ServicePrincipal.apigateway,
            session_name="BackplaneAssumeRoleSession",
            config=NO_RETRY,
        )
    return integrations.connect_to(region_name=region_name, config=NO_RETRY)


def rejected_invoke(error: BaseException) -> bool:
    """Whether an integration failure came from Lambda refusing the invoke (a throttle)."""
    cause = error.__cause__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == (
        "TooManyRequestsException"
    )


def _proxy_invoke(fn, self, context):
    try:
        return fn(self, context)
    except IntegrationFailureError as error:
        if error.status_code != 500 and rejected_invoke(error):
            raise IntegrationFailureError("Internal server error", status_code=500) from error
        raise


def patches() -> Patches:
    p = Patches()
    p.function(integrations.get_service_factory, _get_service_factory)
    p.function(integrations.RestApiAwsProxyIntegration.invoke, _proxy_invoke)
    return p
