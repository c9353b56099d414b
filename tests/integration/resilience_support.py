"""Small test functions carrying lab_faults / lab_breaker, deployed to a real LocalStack.

The zip is built like the bootstrap's: the handler, every package under lambdas/common/, and the
libraries those need (Powertools, pybreaker, typing_extensions) copied from the pinned venv.
"""

from __future__ import annotations

import functools
import io
import json
import site
import textwrap
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMMON = REPO / "lambdas" / "common"
LIBRARIES = ("aws_lambda_powertools", "pybreaker", "typing_extensions.py")
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def _site_packages() -> Path:
    for candidate in site.getsitepackages():
        if (Path(candidate) / "pybreaker").is_dir():
            return Path(candidate)
    raise RuntimeError("pybreaker not found in the venv's site-packages")


def _add_tree(archive: zipfile.ZipFile, root: Path, arcroot: str) -> None:
    if root.is_file():
        archive.write(root, arcroot)
        return
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            archive.write(path, f"{arcroot}/{path.relative_to(root)}")


@functools.cache
def _base_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        packages = _site_packages()
        for name in LIBRARIES:
            _add_tree(archive, packages / name, name)
        for package in sorted(p for p in COMMON.iterdir() if (p / "__init__.py").is_file()):
            _add_tree(archive, package, package.name)
    return buffer.getvalue()


def function_zip(handler_source: str) -> bytes:
    buffer = io.BytesIO(_base_zip())
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", textwrap.dedent(handler_source))
    return buffer.getvalue()


def deploy(instance: Any, source: str, account: str, name: str | None = None,
           **config: Any) -> str:
    name = name or f"res-{uuid.uuid4().hex[:8]}"
    iam = instance.client("iam", account=account)
    try:
        role = iam.get_role(RoleName="lab-test-lambda")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="lab-test-lambda", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    lam = instance.client("lambda", account=account)
    lam.create_function(FunctionName=name, Runtime="python3.13", Handler="app.handler", Role=role,
                        Code={"ZipFile": function_zip(source)}, **config)
    lam.get_waiter("function_active_v2").wait(FunctionName=name,
                                              WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
    return name


def invoke(instance: Any, name: str, event: Any, account: str) -> tuple[dict, Any, float]:
    """Synchronous invoke: (response, decoded payload, wall seconds)."""
    start = time.monotonic()
    response = instance.client("lambda", account=account, read_timeout=60).invoke(
        FunctionName=name, Payload=json.dumps(event))
    raw = response["Payload"].read()
    elapsed = time.monotonic() - start
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    return response, payload, elapsed


def logs(instance: Any, name: str, account: str) -> str:
    client = instance.client("logs", account=account)
    try:
        events = client.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    except client.exceptions.ResourceNotFoundException:
        return ""
    return "".join(e["message"] for e in events)


def wait_logs(instance: Any, name: str, account: str, needle: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = logs(instance, name, account)
        if needle in text:
            return text
        time.sleep(0.3)
    raise AssertionError(f"{needle!r} not in logs of {name} after {timeout} s:\n{text[-3000:]}")
