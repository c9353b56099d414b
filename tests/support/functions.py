"""Deploy small test functions to a real LocalStack."""

from __future__ import annotations

import io
import json
import textwrap
import uuid
import zipfile

TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def zip_files(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, textwrap.dedent(content))
    return buffer.getvalue()


def lambda_role(iam) -> str:
    """A role Lambda can assume (LocalStack checks that it exists)."""
    try:
        return iam.get_role(RoleName="lab-test-lambda")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="lab-test-lambda", AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]


def deploy(instance, code: str | dict[str, str], *, account: str = "000000000000", name: str | None = None,
           runtime: str = "python3.13", wait: bool = True, **config) -> str:
    """Create a function from `code` (app.py source, or a dict of files); returns its name."""
    files = {"app.py": code} if isinstance(code, str) else code
    name = name or f"fn-{uuid.uuid4().hex[:8]}"
    lam = instance.client("lambda", account=account)
    lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Handler=config.pop("Handler", "app.handler"),
        Role=lambda_role(instance.client("iam", account=account)),
        Code={"ZipFile": zip_files(files)},
        **config,
    )
    if wait:
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
    return name


def invoke(instance, name: str, event: dict | None = None, account: str = "000000000000", **kw) -> tuple[dict, object]:
    """Synchronous invoke; returns (response metadata, decoded payload)."""
    response = instance.client("lambda", account=account).invoke(
        FunctionName=name, Payload=json.dumps(event or {}), **kw
    )
    body = response["Payload"].read()
    return response, json.loads(body) if body else None
