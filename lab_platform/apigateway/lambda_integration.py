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

In process (`LAB_PATCH_APIGW_LAMBDA_IN_PROCESS`, a matter of cost, not behaviour). LocalStack
4.14 sends that Invoke through its in-memory boto3 client: botocore serialises the request,
LocalStack's handler chain parses it again, and the answer makes the trip back. The Invoke
handler itself only reads its parameters and calls `LambdaService.invoke`. Measured with
`benchmarks.order_cost` (`/_lab/cpu`): the API Gateway request that invokes a function cost
2.45 ms of LocalStack's CPU plus 1.3 ms in the Invoke handler; a 429 answered before any invoke,
0.55 ms. Here `call_lambda` calls `LambdaService.invoke` itself, as the handler would (same
validation, concurrency leases, throttles, metrics); Lambda's refusals become the `ClientError`
the client would have raised, so API Gateway answers them as before (a throttle: 500, above).
An integration with its own credentials (a role to assume) keeps the client.
"""

from __future__ import annotations

from botocore.config import Config
from botocore.exceptions import ClientError
from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
    IntegrationFailureError,
)
from localstack.services.apigateway.next_gen.execute_api.integrations import aws as integrations
from localstack.aws.api import ServiceException
from localstack.services.lambda_.api_utils import function_locators_from_arn
from localstack.utils.patch import Patch, Patches

from lab_platform import lambda_service

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
    """Whether an integration failure came from the Lambda API refusing the invoke (a throttle, a
    payload over 6 MB, ...). AWS: "If the Lambda API rejects the invocation request, API Gateway
    returns a 500 error code" (Lambda developer guide, services-apigateway-errors); LocalStack 4.14
    answered 502 to every refusal but AccessDenied. A function's own error is no ClientError."""
    return isinstance(error.__cause__, ClientError)


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


def _refusal(error: ServiceException) -> ClientError:
    """Lambda's refusal as the boto3 client would have raised it."""
    return ClientError(
        {"Error": {"Code": error.code, "Message": error.message},
         "ResponseMetadata": {"HTTPStatusCode": error.status_code}},
        "Invoke",
    )


def _call_lambda_in_process(fn, function_arn: str, event: bytes, source_arn: str, credentials: str = None) -> bytes:
    service = lambda_service.current()
    name, qualifier, account, region = function_locators_from_arn(function_arn)
    if credentials or service is None or not (name and account and region):
        return fn(function_arn=function_arn, event=event, source_arn=source_arn, credentials=credentials)
    try:
        result = lambda_service.invoke_in_process(service, name, qualifier, region, account, event,
                                                  "apigateway.amazonaws.com")
    except ServiceException as refused:
        raise _refusal(refused) from refused
    return result.payload or b""


def in_process_patches() -> Patches:
    lambda_service.capture()
    cls = integrations.RestApiAwsProxyIntegration
    original = cls.call_lambda

    def call_lambda(function_arn: str, event: bytes, source_arn: str, credentials: str = None) -> bytes:
        return _call_lambda_in_process(original, function_arn, event, source_arn, credentials)

    # a staticmethod: Patch.function would make it a method and pass the integration as an argument
    patch = Patch(cls, "call_lambda", staticmethod(call_lambda))
    patch.old = cls.__dict__["call_lambda"]
    return Patches([patch])
