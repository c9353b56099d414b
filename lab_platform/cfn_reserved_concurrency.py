"""CloudFormation applies a function's `ReservedConcurrentExecutions`.

AWS: `AWS::Lambda::Function` (and so `AWS::Serverless::Function`, which the SAM transform turns
into one) sets the function's reserved concurrency from `ReservedConcurrentExecutions`, as
PutFunctionConcurrency does, and removes it when the property goes (the resource's handlers need
`lambda:PutFunctionConcurrency` / `lambda:DeleteFunctionConcurrency`; CloudFormation user guide,
"AWS::Lambda::Function"). An invocation beyond it is throttled. An SQS event source mapping does not
account for it: "Event source mappings don't account for reserved concurrency and can process more
messages off your queue than can be sent to your function" (AWS re:Post knowledge center,
"lambda-sqs-scaling"); a throttled batch is retried "until the message's timestamp exceeds your
queue's visibility timeout, at which point Lambda drops the message" (Lambda developer guide,
"Handling errors for an SQS event source in Lambda"), and the message's next receive counts toward
the queue's maxReceiveCount, so with a low one throttled messages reach the dead-letter queue.
LocalStack 4.14: its `AWS::Lambda::Function` resource provider passes a fixed list of properties to
CreateFunction / UpdateFunctionConfiguration and `ReservedConcurrentExecutions` is not among them:
the stack deploys, the function has no reserved concurrency, nothing is ever throttled, and an SQS
mapping's messages never reach the DLQ through throttling (the lab's ESM patch, `sqs_esm/`, retries
and drops throttled batches as AWS does, but no throttle came).
Here: after the provider has created the function (the resource's final, SUCCESS step, so before
any resource that refers to the function, such as its event source mapping, exists) the reserved
concurrency is put; an update puts the new value or deletes it when the property is gone. A value
Lambda refuses (e.g. one that leaves the account less than its unreserved minimum) fails the
resource with Lambda's message, as on AWS.
Measured (2 cores): a SAM app, reserved concurrency 1, ScalingConfig MaximumConcurrency 5, queue
visibility timeout 10 s and maxReceiveCount 1, 20 messages of a 2 s function: LocalStack 4.14 ran
them 5 at a time and dead-lettered none; with the patch, 1 at a time: 12 ran and 8-9 reached the
DLQ (3 runs; a message invoked just before its visibility timeout ended can do both, which is why
AWS advises a visibility timeout of six times the function's timeout).
"""

from __future__ import annotations

import logging
from typing import Any

from localstack.services.cloudformation.resource_provider import OperationStatus, ProgressEvent
from localstack.services.lambda_.resource_providers.aws_lambda_function import (
    LambdaFunctionProvider,
)
from localstack.utils.patch import Patches

LOG = logging.getLogger(__name__)

PROPERTY = "ReservedConcurrentExecutions"


def reserved(model: dict[str, Any] | None) -> int | None:
    """The property's value as a number (CloudFormation may hand it over as a string), or None."""
    value = (model or {}).get(PROPERTY)
    if value is None or value == "":
        return None
    return int(value)


def _failed(event: ProgressEvent, error: Exception) -> ProgressEvent:
    response = getattr(error, "response", {}) or {}
    code = response.get("Error", {}).get("Code", type(error).__name__)
    message = response.get("Error", {}).get("Message", str(error))
    return ProgressEvent(
        status=OperationStatus.FAILED,
        resource_model=event.resource_model,
        error_code=code,
        message=f"{PROPERTY}: {message}",
    )


def _apply(request, event: ProgressEvent, previous: int | None) -> ProgressEvent:
    if event.status != OperationStatus.SUCCESS:
        return event  # still creating (the provider is called again) or already failed
    wanted = reserved(request.desired_state)
    if wanted == previous:
        return event
    name = (event.resource_model or {}).get("FunctionName") or request.desired_state["FunctionName"]
    lam = request.aws_client_factory.lambda_
    try:
        if wanted is None:
            lam.delete_function_concurrency(FunctionName=name)
        else:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=wanted)
    except Exception as error:  # noqa: BLE001 - Lambda's refusal becomes the resource's failure
        return _failed(event, error)
    LOG.debug("CloudFormation: %s of %s set to %s", PROPERTY, name, wanted)
    if event.resource_model is not None and wanted is not None:
        event.resource_model[PROPERTY] = wanted
    return event


def _create(fn, self: LambdaFunctionProvider, request) -> ProgressEvent:
    return _apply(request, fn(self, request), previous=None)


def _update(fn, self: LambdaFunctionProvider, request) -> ProgressEvent:
    return _apply(request, fn(self, request), previous=reserved(request.previous_state))


def patches() -> Patches:
    p = Patches()
    p.function(LambdaFunctionProvider.create, _create)
    p.function(LambdaFunctionProvider.update, _update)
    return p
