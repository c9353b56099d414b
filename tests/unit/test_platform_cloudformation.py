"""Bring your own app (issue #18): CloudFormation and S3 are among LocalStack's services in both
modes, and CloudFormation applies ReservedConcurrentExecutions (lab_platform/cfn_reserved_concurrency)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml
from localstack.services.cloudformation.resource_provider import OperationStatus, ProgressEvent

from labctl.localstack_host import lab_settings
from lab_kernel.settings import REPO_ROOT, Settings, read_env_file
from lab_platform import cfn_reserved_concurrency as patch


def test_both_modes_run_cloudformation_and_s3_from_the_one_env_setting():
    services = read_env_file(REPO_ROOT / ".env")["LAB_LOCALSTACK_SERVICES"]
    assert {"cloudformation", "s3", "lambda", "sqs", "apigateway"} <= set(services.split(","))
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    assert compose["x-localstack"]["environment"]["SERVICES"] == "${LAB_LOCALSTACK_SERVICES}"
    assert lab_settings(Settings.load())["SERVICES"] == services


class FakeLambda:
    """Records the concurrency calls; `refuse` makes Lambda refuse a put as it does on AWS."""

    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple] = []
        self.refuse = refuse

    def put_function_concurrency(self, FunctionName: str, ReservedConcurrentExecutions: int):  # noqa: N803
        if self.refuse:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "InvalidParameterValueException",
                                         "Message": "below its minimum value of [100]."}},
                              "PutFunctionConcurrency")
        self.calls.append(("put", FunctionName, ReservedConcurrentExecutions))

    def delete_function_concurrency(self, FunctionName: str):  # noqa: N803
        self.calls.append(("delete", FunctionName))


def request(desired: dict, lam: FakeLambda) -> SimpleNamespace:
    return SimpleNamespace(desired_state=desired, aws_client_factory=SimpleNamespace(lambda_=lam))


def done(model: dict, status=OperationStatus.SUCCESS) -> ProgressEvent:
    return ProgressEvent(status=status, resource_model=dict(model))


def test_created_function_gets_its_reserved_concurrency_once_it_exists():
    lam = FakeLambda()
    model = {"FunctionName": "f", "ReservedConcurrentExecutions": "3"}  # CloudFormation: a string
    still_creating = patch._apply(request(model, lam), done(model, OperationStatus.IN_PROGRESS), None)
    assert still_creating.status == OperationStatus.IN_PROGRESS and lam.calls == []
    event = patch._apply(request(model, lam), done(model), None)
    assert event.status == OperationStatus.SUCCESS
    assert lam.calls == [("put", "f", 3)]


def test_update_puts_a_changed_value_deletes_a_removed_one_and_leaves_an_unchanged_one():
    lam = FakeLambda()
    patch._apply(request({"FunctionName": "f", "ReservedConcurrentExecutions": 5}, lam),
                 done({"FunctionName": "f"}), previous=3)
    patch._apply(request({"FunctionName": "f"}, lam), done({"FunctionName": "f"}), previous=5)
    patch._apply(request({"FunctionName": "f", "ReservedConcurrentExecutions": 5}, lam),
                 done({"FunctionName": "f"}), previous=5)
    patch._apply(request({"FunctionName": "f"}, lam), done({"FunctionName": "f"}), previous=None)
    assert lam.calls == [("put", "f", 5), ("delete", "f")]


def test_a_value_lambda_refuses_fails_the_resource_with_lambdas_message():
    model = {"FunctionName": "f", "ReservedConcurrentExecutions": 399}
    event = patch._apply(request(model, FakeLambda(refuse=True)), done(model), None)
    assert event.status == OperationStatus.FAILED
    assert event.error_code == "InvalidParameterValueException"
    assert event.message == "ReservedConcurrentExecutions: below its minimum value of [100]."


@pytest.mark.parametrize("raw, expected", [(None, None), ("", None), ("0", 0), (7, 7)])
def test_reserved_reads_cloudformations_strings_and_numbers(raw, expected):
    assert patch.reserved({"ReservedConcurrentExecutions": raw}) == expected
