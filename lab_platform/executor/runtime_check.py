"""A function whose runtime the process executor cannot serve is refused when it is created.

AWS: CreateFunction and UpdateFunctionConfiguration refuse a runtime Lambda does not offer (or no
longer offers for new functions) with InvalidParameterValueException, before anything runs.
LocalStack 4.14 with the process executor: the runtime passed LocalStack's own list, the function
was created, and only the executor's `prepare_version` failed afterwards, asynchronously; the
function ended in state Failed, and the user learnt why only from `get-function`'s StateReason or
LocalStack's log, after a deploy tool had already reported success.
Here: while the process executor is selected (`LAMBDA_RUNTIME_EXECUTOR=process`), a Zip function's
runtime is resolved to an interpreter first (`interpreters.interpreter_for`: the runtime's own
Python, else the nearest newer one with a warning); when there is none the call fails with
InvalidParameterValueException and one line saying what to install. Measured: a `python3.9`
function on a machine with Python 3.13 only is created and runs on 3.13 with the warning in its
init log; a `nodejs20.x` function is refused at CreateFunction.
"""

from __future__ import annotations

from localstack import config
from localstack.aws.api.lambda_ import InvalidParameterValueException, PackageType
from localstack.services.lambda_.provider import LambdaProvider
from localstack.utils.patch import Patches

from lab_platform.executor.interpreters import UnsupportedRuntime, interpreter_for


def _check(runtime: str | None, package_type: str | None) -> None:
    if config.LAMBDA_RUNTIME_EXECUTOR != "process" or not runtime:
        return
    if package_type not in (None, PackageType.Zip):
        return
    try:
        interpreter_for(runtime)
    except UnsupportedRuntime as error:
        raise InvalidParameterValueException(str(error), Type="User") from None


def _validate_runtime(fn, self, package_type, runtime):
    fn(self, package_type, runtime)  # LocalStack's own list of runtimes first, with AWS's message
    _check(runtime, package_type)


def _update_function_configuration(fn, self, context, request):
    if "Runtime" in request:
        _check(request["Runtime"], None)
    return fn(self, context, request)


def patches() -> Patches:
    p = Patches()
    p.function(LambdaProvider._validate_runtime, _validate_runtime)
    p.function(LambdaProvider.update_function_configuration, _update_function_configuration)
    return p
