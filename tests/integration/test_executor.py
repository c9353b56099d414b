"""The process runtime executor against a real LocalStack 4.14 (issue #3, point 4)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import localstack as ls
from tests.support.functions import deploy, invoke, zip_files

# The executor's own behaviour on this machine: its processes, folders and interpreters (python3.12
# too, which the lab's image does not carry), so a host LocalStack even where Docker answers.
pytestmark = [pytest.mark.integration, pytest.mark.host_localstack]

PROBE = """
import json, os, sys, time
import boto3

def handler(event, context):
    if event.get("raise"):
        raise ValueError("boom: " + event["raise"])
    if event.get("sleep"):
        print("sleeping", event["sleep"])
        time.sleep(event["sleep"])
    if event.get("exit"):
        os._exit(7)
    if event.get("queue"):
        boto3.client("sqs").send_message(QueueUrl=event["queue"], MessageBody=context.aws_request_id)
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "version": "%d.%d" % sys.version_info[:2],
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "LAMBDA_", "_HANDLER", "TZ"))},
        "marker": os.environ.get("MARKER"),
        "tmp": __import__("tempfile").gettempdir(),
    }
"""


def log_text(instance, name: str, needle: str, timeout: float = 15) -> str:
    logs = instance.client("logs")
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        text = "".join(e["message"] for e in events)
        if needle in text:
            return text
        time.sleep(0.3)
    raise AssertionError(f"{needle!r} not in logs of {name} after {timeout} s:\n{text[-2000:]}")


def test_sync_invoke_returns_the_handler_result_with_the_aws_environment(localstack):
    name = deploy(localstack, PROBE, Timeout=7, MemorySize=256)
    response, body = invoke(localstack, name, {})
    assert "FunctionError" not in response
    env = body["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SESSION_TOKEN"]
    assert os.path.isdir(env["LAMBDA_TASK_ROOT"])
    assert body["request_id"]
    assert 5000 < body["remaining_ms"] <= 7000


def test_function_reaches_localstack_through_boto3_without_configuration(localstack):
    queue = localstack.client("sqs").create_queue(QueueName="executor-probe")["QueueUrl"]
    name = deploy(localstack, PROBE)
    _, body = invoke(localstack, name, {"queue": queue})
    messages = localstack.client("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in messages] == [body["request_id"]]


def test_async_invoke_runs_the_function(localstack):
    queue = localstack.client("sqs").create_queue(QueueName="executor-async")["QueueUrl"]
    name = deploy(localstack, PROBE)
    response = localstack.client("lambda").invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps({"queue": queue})
    )
    assert response["StatusCode"] == 202
    messages = localstack.client("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=15)["Messages"]
    assert len(messages) == 1


def test_handler_exception_is_a_function_error_with_type_message_and_trace(localstack):
    name = deploy(localstack, PROBE)
    response, body = invoke(localstack, name, {"raise": "bad order"})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "boom: bad order"
    assert any("app.py" in frame and "handler" in frame for frame in body["stackTrace"])
    assert not any("zygote.py" in frame for frame in body["stackTrace"])
    assert "[ERROR] ValueError: boom: bad order" in log_text(localstack, name, "ValueError")


def test_timeout_is_enforced_and_reported_as_aws_does(localstack):
    name = deploy(localstack, PROBE, Timeout=1)
    began = time.monotonic()
    response, body = invoke(localstack, name, {"sleep": 5})
    elapsed = time.monotonic() - began
    assert response["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    assert elapsed < 4, f"the 5 s handler was not stopped at its 1 s timeout ({elapsed:.1f} s)"
    text = log_text(localstack, name, "Task timed out after 1.00 seconds")
    assert "sleeping 5" in text  # lines printed before the timeout are kept


def test_logs_have_start_end_report_in_cloudwatch(localstack):
    name = deploy(localstack, PROBE, MemorySize=512)
    _, body = invoke(localstack, name, {})
    request_id = body["request_id"]
    text = log_text(localstack, name, f"REPORT RequestId: {request_id}")
    assert f"START RequestId: {request_id} Version: $LATEST" in text
    assert f"END RequestId: {request_id}" in text
    report = next(line for line in text.splitlines() if line.startswith(f"REPORT RequestId: {request_id}"))
    assert "Duration: " in report and "Billed Duration: " in report
    assert "Memory Size: 512 MB" in report
    used = int(report.split("Max Memory Used: ")[1].split(" MB")[0])
    assert 1 <= used <= 512
    assert "Init Duration: " in report  # first invocation of a new environment


def test_crashed_environment_gives_exit_error_and_the_next_invoke_a_fresh_one(localstack):
    name = deploy(localstack, PROBE)
    _, first = invoke(localstack, name, {})
    response, body = invoke(localstack, name, {"exit": True})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    # AWS's words, with the runtime's exit status (the probe calls os._exit(7))
    assert body["errorMessage"].endswith("Error: Runtime exited with error: exit status 7"), body
    text = log_text(localstack, name, "exit status 7")
    assert "Runtime exited with error: exit status 7\nRuntime.ExitError" in text
    response, after = invoke(localstack, name, {})
    assert "FunctionError" not in response
    assert after["pid"] != first["pid"]


def test_an_environment_killed_from_outside_mid_invocation_is_reported_as_aws_does(localstack):
    """SIGKILL from outside (the out-of-memory killer): `Runtime exited with error: signal: killed`."""
    name = deploy(localstack, PROBE, Timeout=60)
    _, first = invoke(localstack, name, {})
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(invoke, localstack, name, {"sleep": 30})
        time.sleep(3)  # the environment's logs reach CloudWatch when the invocation ends: no signal
        assert not pending.done()  # the handler is still sleeping in the one environment
        os.kill(first["pid"], signal.SIGKILL)
        response, body = pending.result(timeout=60)
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Error: Runtime exited with error: signal: killed"), body
    response, after = invoke(localstack, name, {})
    assert "FunctionError" not in response and after["pid"] != first["pid"]


def test_code_and_configuration_updates_replace_environments(localstack):
    lam = localstack.client("lambda")
    name = deploy(localstack, PROBE, Environment={"Variables": {"MARKER": "one"}})
    _, before = invoke(localstack, name, {})
    assert before["marker"] == "one"

    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"MARKER": "two"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    _, after_config = invoke(localstack, name, {})
    assert after_config["marker"] == "two"
    assert after_config["pid"] != before["pid"]

    lam.update_function_code(FunctionName=name, ZipFile=zip_files({"app.py": "def handler(e, c):\n    return {'code': 'new'}\n"}))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    _, after_code = invoke(localstack, name, {})
    assert after_code == {"code": "new"}


def test_concurrent_invokes_get_one_environment_each(localstack):
    name = deploy(localstack, PROBE, Timeout=30)
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: invoke(localstack, name, {"sleep": 2}), range(12)))
    pids = {body["pid"] for _, body in results}
    assert all("FunctionError" not in r for r, _ in results)
    assert len(pids) == 12
    assert len({body["ppid"] for _, body in results}) == 1  # all forked from one zygote


def test_reserved_concurrency_bounds_environments(localstack):
    lam = localstack.client("lambda")
    name = deploy(localstack, PROBE, Timeout=30)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)

    def call(_):
        try:
            return invoke(localstack, name, {"sleep": 2})[1]["pid"]
        except lam.exceptions.TooManyRequestsException:
            return "throttled"

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(call, range(6)))
    assert outcomes.count("throttled") == 3
    assert len({o for o in outcomes if o != "throttled"}) == 3


def test_function_imports_its_own_packages_not_localstacks(localstack):
    files = {
        "app.py": """
            import importlib.util, sys
            import labdep
            def handler(event, context):
                return {
                    "labdep": labdep.VERSION,
                    "labdep_file": labdep.__file__,
                    "localstack": importlib.util.find_spec("localstack") is not None,
                    "pytest": importlib.util.find_spec("pytest") is not None,
                    "boto3": importlib.util.find_spec("boto3") is not None,
                    "path0": sys.path[0],
                }
        """,
        "labdep/__init__.py": "VERSION = '1.2.3'\n",
    }
    name = deploy(localstack, files)
    _, body = invoke(localstack, name, {})
    assert body["labdep"] == "1.2.3"
    assert body["labdep_file"].startswith(body["path0"])
    assert body["localstack"] is False and body["pytest"] is False
    assert body["boto3"] is True  # provided by the runtime, as on AWS


@pytest.mark.parametrize("version", ["3.9", "3.10", "3.11", "3.12", "3.13"])
def test_runtimes_map_to_their_interpreters(localstack, version):
    # this machine has each of them (pyenv); the lab's image has 3.13 only (see the next test)
    name = deploy(localstack, PROBE, runtime=f"python{version}")
    _, body = invoke(localstack, name, {})
    assert body["version"] == version


def test_a_runtime_without_its_own_python_runs_on_the_nearest_newer_one_and_says_so(localstack_with, tmp_path):
    # A machine with Python 3.13 only, as the lab's image: PATH holds python3.13 alone, no pyenv.
    only = tmp_path / "bin"
    only.mkdir()
    (only / "python3.13").symlink_to(os.path.realpath(sys.executable))
    instance = localstack_with(PATH=str(only), HOME=str(tmp_path))
    name = deploy(instance, PROBE, runtime="python3.10")
    _, body = invoke(instance, name, {})
    assert body["version"] == "3.13"
    assert body["env"]["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.10"  # the function's own runtime
    text = log_text(instance, name, "[lab] runtime python3.10 runs on Python 3.13 here")
    assert "no Python 3.10 found (install it, e.g. `pyenv install 3.10`, or set LAB_RUNTIME_PYTHON3_10)" in text
    # a runtime it cannot serve at all is refused when the function is created, saying what to do
    lam = instance.client("lambda")
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="nodejs20.x.*Python zip functions"):
        deploy(instance, PROBE, runtime="nodejs20.x")
    name = deploy(instance, PROBE)
    with pytest.raises(lam.exceptions.InvalidParameterValueException, match="runtime 'nodejs20.x' is not served"):
        lam.update_function_configuration(FunctionName=name, Runtime="nodejs20.x")


def test_import_error_is_reported_as_aws_does(localstack):
    name = deploy(localstack, "import not_shipped_anywhere\ndef handler(e, c):\n    return 1\n")
    response, body = invoke(localstack, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'app'" in body["errorMessage"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pids: set[int], timeout: float = 15) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = {p for p in pids if _alive(p)}
        if not alive:
            return set()
        time.sleep(0.2)
    return alive


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_no_environment_survives_localstack(how):
    instance = ls.start_host()
    try:
        name = deploy(instance, PROBE, Timeout=60)
        with ThreadPoolExecutor(3) as pool:
            bodies = [b for _, b in pool.map(lambda _: invoke(instance, name, {"sleep": 1}), range(3))]
        pids = {b["pid"] for b in bodies} | {b["ppid"] for b in bodies}
        assert len(pids) == 4 and all(_alive(p) for p in pids)
        if how == "sigterm":
            instance.stop()
        else:
            leader = int(open(f"/proc/{bodies[0]['ppid']}/stat").read().rsplit(")", 1)[1].split()[1])
            os.kill(leader, signal.SIGKILL)  # LocalStack itself, with no chance to clean up
        assert _wait_gone(pids) == set()
    finally:
        instance.stop()


def test_each_environment_has_its_own_temporary_folder_removed_at_stop(localstack):
    lam = localstack.client("lambda")
    name = deploy(localstack, PROBE, Timeout=30)
    with ThreadPoolExecutor(2) as pool:
        bodies = [b for _, b in pool.map(lambda _: invoke(localstack, name, {"sleep": 1}), range(2))]
    folders = {b["tmp"] for b in bodies}
    assert len(folders) == 2 and all(os.path.isdir(f) for f in folders)
    lam.delete_function(FunctionName=name)  # stops its environments
    deadline = time.monotonic() + 15
    while any(os.path.isdir(f) for f in folders) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not any(os.path.isdir(f) for f in folders)
