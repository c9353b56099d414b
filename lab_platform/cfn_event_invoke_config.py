"""CloudFormation updates an `AWS::Lambda::EventInvokeConfig` in place.

AWS: `AWS::Lambda::EventInvokeConfig` "configures options for asynchronous invocation on a version
or an alias"; `MaximumRetryAttempts`, `MaximumEventAgeInSeconds` and `DestinationConfig` are
updatable with no interruption (only `FunctionName` and `Qualifier` require replacement)
(CloudFormation user guide, "AWS::Lambda::EventInvokeConfig",
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-lambda-eventinvokeconfig.html);
the update handler calls PutFunctionEventInvokeConfig, which replaces the whole configuration
(Lambda API reference, "PutFunctionEventInvokeConfig"). SAM's `EventInvokeConfig` on an
`AWS::Serverless::Function` becomes such a resource.
LocalStack 4.14: the resource provider's `update` raises NotImplementedError, so a stack update that
changes e.g. MaximumRetryAttempts from 2 to 0 fails that resource and the function keeps the old
configuration (a failing event is still retried twice).
Here: `update` puts the desired configuration (PutFunctionEventInvokeConfig, whole replacement, as
AWS's handler does) and keeps the resource's Id.
Measured: see lab_platform/README.md (LAB_PATCH_CFN_EVENT_INVOKE_CONFIG).
"""

from __future__ import annotations

import logging
from typing import Any

from localstack.services.cloudformation.resource_provider import OperationStatus, ProgressEvent
from localstack.services.lambda_.resource_providers.aws_lambda_eventinvokeconfig import (
    LambdaEventInvokeConfigProvider,
)
from localstack.utils.patch import Patches

LOG = logging.getLogger(__name__)

UPDATABLE = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")


def put_request(desired: dict[str, Any]) -> dict[str, Any]:
    """PutFunctionEventInvokeConfig's arguments from the resource's desired state: the function,
    the qualifier and the updatable properties present (numbers as numbers: CloudFormation may
    hand them over as strings); an absent property is absent, as the whole configuration is
    replaced."""
    request: dict[str, Any] = {"FunctionName": desired["FunctionName"],
                               "Qualifier": desired["Qualifier"]}
    for key in UPDATABLE:
        value = desired.get(key)
        if value is None or value == "":
            continue
        request[key] = int(value) if key != "DestinationConfig" else value
    return request


def _update(fn, self: LambdaEventInvokeConfigProvider, request) -> ProgressEvent:
    model = dict(request.desired_state)
    try:
        request.aws_client_factory.lambda_.put_function_event_invoke_config(**put_request(model))
    except Exception as error:  # noqa: BLE001 - Lambda's refusal becomes the resource's failure
        response = getattr(error, "response", {}) or {}
        return ProgressEvent(
            status=OperationStatus.FAILED,
            resource_model=model,
            error_code=response.get("Error", {}).get("Code", type(error).__name__),
            message=response.get("Error", {}).get("Message", str(error)),
        )
    model["Id"] = (request.previous_state or {}).get("Id") or model.get("Id")
    LOG.debug("CloudFormation: event invoke config of %s:%s updated",
              model["FunctionName"], model["Qualifier"])
    return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model,
                         custom_context=request.custom_context)


def patches() -> Patches:
    p = Patches()
    p.function(LambdaEventInvokeConfigProvider.update, _update)
    return p
