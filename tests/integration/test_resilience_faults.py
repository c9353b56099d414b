"""lab_faults inside a real function on a real LocalStack, driven by `python -m resilience.chaos`."""

from __future__ import annotations

import json
import time

import pytest

from bootstrap.provision import function_side_url
from lab_kernel.settings import Settings
from resilience import chaos
from tests.integration.resilience_support import deploy, invoke, logs, wait_logs

pytestmark = pytest.mark.integration

ACCOUNT = "111111111111"
TTL = 0.5  # LAB_FAULTS_CACHE_SECONDS for the test function: changes visible within half a second

PROBE = """
import glob, json, os, socket, tempfile
from lab_faults import inject_faults

@inject_faults
def handler(event, context):
    out = {"ok": True, "pid": os.getpid()}
    if event.get("connect"):
        host, port = event["connect"]
        try:
            socket.create_connection((host, port), timeout=3).close()
            out["connected"] = True
        except OSError as error:
            out["connect_error"] = type(error).__name__ + ": " + str(error)
    if event.get("disk"):
        out["disk_files"] = [os.path.getsize(p) for p in glob.glob(os.path.join(tempfile.gettempdir(), "lab-faults-disk-*"))]
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(out)}
"""


@pytest.fixture(scope="module")
def probe(localstack):
    name = deploy(localstack, PROBE, ACCOUNT, Timeout=3, MemorySize=256,
                  Environment={"Variables": {"LAB_FAULTS_CACHE_SECONDS": str(TTL)}})
    invoke(localstack, name, {}, ACCOUNT)  # warm: later timings are not cold starts
    yield name
    chaos.main(["off", "--function", name, "--topology", "no-flow-control",
                "--endpoint-url", localstack.url])


def chaos_on(localstack, name, *args):
    assert chaos.main(["on", "--function", name, "--topology", "no-flow-control",
                       "--endpoint-url", localstack.url, *args]) == 0
    time.sleep(TTL + 0.2)


def chaos_off(localstack, name):
    assert chaos.main(["off", "--function", name, "--topology", "no-flow-control",
                       "--endpoint-url", localstack.url]) == 0
    time.sleep(TTL + 0.2)


def body(payload):
    return json.loads(payload["body"])


def test_latency_is_injected_and_counted_with_the_correlation_id(localstack, probe):
    chaos_on(localstack, probe, "--mode", "latency", "--min-ms", "400", "--max-ms", "500")
    try:
        response, payload, elapsed = invoke(localstack, probe, {"correlation_id": "lat-1"}, ACCOUNT)
        assert payload["statusCode"] == 200
        assert elapsed >= 0.4
        text = wait_logs(localstack, probe, ACCOUNT, '"correlation_id": "lat-1"')
        line = next(json.loads(x) for x in text.splitlines() if '"correlation_id": "lat-1"' in x)
        assert line["fault_mode"] == "latency" and 400 <= line["latency_ms"] <= 500
        assert '"FaultInjected"' in text and '"mode":"latency"' in text
    finally:
        chaos_off(localstack, probe)
    # reverted without a redeploy: the next invocation is not delayed (judged by the function's
    # own log, not by wall time, which a loaded machine stretches)
    response, _, _ = invoke(localstack, probe, {"correlation_id": "after-1"}, ACCOUNT)
    request_id = response["ResponseMetadata"]["RequestId"]
    text = wait_logs(localstack, probe, ACCOUNT, f"END RequestId: {request_id}")
    assert '"correlation_id": "after-1"' not in text


def test_exception_mode_fails_the_invocation_as_an_injected_fault(localstack, probe):
    chaos_on(localstack, probe, "--mode", "exception", "--message", "chaos says no")
    try:
        response, payload, _ = invoke(localstack, probe, {}, ACCOUNT)
        assert response.get("FunctionError") == "Unhandled"
        assert payload["errorType"] == "InjectedFault" and payload["errorMessage"] == "chaos says no"
    finally:
        chaos_off(localstack, probe)
    response, payload, _ = invoke(localstack, probe, {}, ACCOUNT)
    assert "FunctionError" not in response


@pytest.mark.parametrize("how", ["kill", "exit"])
def test_crash_mode_ends_the_environment_and_the_next_invocation_gets_a_fresh_one(localstack, probe, how):
    _, payload, _ = invoke(localstack, probe, {}, ACCOUNT)
    pid_before = body(payload)["pid"]
    chaos_on(localstack, probe, "--mode", "crash", "--how", how, "--when", "before")
    try:
        response, payload, _ = invoke(localstack, probe, {"correlation_id": f"crash-{how}"}, ACCOUNT)
        # what AWS reports when the runtime process dies (out of memory, segfault, exit)
        assert response.get("FunctionError") == "Unhandled"
        assert payload["errorType"] == "Runtime.ExitError"
        reason = {"kill": "signal: killed", "exit": "exit status 1"}[how]
        assert payload["errorMessage"].endswith(f"Error: Runtime exited with error: {reason}"), payload
        # the line announcing the crash was flushed before the process died
        text = wait_logs(localstack, probe, ACCOUNT, f'"correlation_id": "crash-{how}"')
        assert '"fault_mode": "crash"' in text
    finally:
        chaos_off(localstack, probe)
    response, payload, _ = invoke(localstack, probe, {}, ACCOUNT)
    assert "FunctionError" not in response
    assert body(payload)["pid"] != pid_before  # a new environment, with its own init


def test_timeout_mode_makes_the_platform_time_the_function_out(localstack, probe):
    chaos_on(localstack, probe, "--mode", "timeout")
    try:
        response, payload, elapsed = invoke(localstack, probe, {}, ACCOUNT)
        assert response.get("FunctionError")
        assert "timed out" in json.dumps(payload).lower()
        assert 2.5 <= elapsed < 30  # at least the 3 s timeout; a loaded machine adds the rest
    finally:
        chaos_off(localstack, probe)


def test_status_code_mode_answers_the_configured_code(localstack, probe):
    chaos_on(localstack, probe, "--mode", "status_code", "--status-code", "503")
    try:
        _, payload, _ = invoke(localstack, probe, {}, ACCOUNT)
        assert payload["statusCode"] == 503
        assert payload["headers"]["X-Lab-Fault"] == "status_code"
    finally:
        chaos_off(localstack, probe)


def test_disk_space_mode_fills_tmp_during_the_invocation(localstack, probe):
    chaos_on(localstack, probe, "--mode", "disk_space", "--mb", "8")
    try:
        _, payload, _ = invoke(localstack, probe, {"disk": True}, ACCOUNT)
        assert 8 * 1024 * 1024 in body(payload)["disk_files"]
    finally:
        chaos_off(localstack, probe)


def test_denylist_blocks_matching_hosts_only(localstack, probe):
    # LocalStack as the function sees it: itself on the host, or 127.0.0.1:4566 in its container
    port = function_side_url(localstack.url, Settings.load()).rsplit(":", 1)[1]
    chaos_on(localstack, probe, "--mode", "denylist", "--hosts", rf"^127\.0\.0\.1:{port}$")
    try:
        _, payload, _ = invoke(localstack, probe, {"connect": ["127.0.0.1", int(port)]}, ACCOUNT)
        assert "DenylistedConnection" in body(payload)["connect_error"]
    finally:
        chaos_off(localstack, probe)
    _, payload, _ = invoke(localstack, probe, {"connect": ["127.0.0.1", int(port)]}, ACCOUNT)
    assert body(payload).get("connected") is True


def test_corruption_mode_breaks_the_response_body(localstack, probe):
    chaos_on(localstack, probe, "--mode", "corruption", "--style", "truncate")
    try:
        _, payload, _ = invoke(localstack, probe, {}, ACCOUNT)
        assert payload["statusCode"] == 200
        with pytest.raises(ValueError):
            json.loads(payload["body"])
    finally:
        chaos_off(localstack, probe)


def test_rate_match_rules_and_several_modes_in_order(localstack, probe):
    # status_code only for VIP customers; latency for everyone: both fire, latency first
    chaos_on(localstack, probe, "--mode", "status_code", "--status-code", "418",
             "--match", "body.customer~^vip-")
    chaos_on(localstack, probe, "--mode", "latency", "--min-ms", "50", "--max-ms", "60")
    try:
        _, vip, _ = invoke(localstack, probe, {"body": json.dumps({"customer": "vip-1"}),
                                               "correlation_id": "order-vip"}, ACCOUNT)
        _, plain, _ = invoke(localstack, probe, {"body": json.dumps({"customer": "bob"})}, ACCOUNT)
        assert vip["statusCode"] == 418 and plain["statusCode"] == 200
        # wait for this order's own lines: earlier tests wrote "injected status_code" too, and
        # CloudWatch Logs receives an invocation's lines a moment after it returns
        deadline = time.monotonic() + 15
        while True:
            text = logs(localstack, probe, ACCOUNT)
            lines = [json.loads(line) for line in text.splitlines()
                     if line.startswith("{") and '"correlation_id": "order-vip"' in line]
            if len(lines) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert [line["fault_mode"] for line in lines] == ["latency", "status_code"]
    finally:
        chaos_off(localstack, probe)
    chaos_on(localstack, probe, "--mode", "exception", "--rate", "0.5")
    try:
        failures = sum(1 for _ in range(20)
                       if invoke(localstack, probe, {}, ACCOUNT)[0].get("FunctionError"))
        assert 3 <= failures <= 17  # P(outside) < 0.3 % for a fair 50 % coin
    finally:
        chaos_off(localstack, probe)


def test_a_fault_with_a_duration_reverts_by_itself(localstack, probe):
    chaos_on(localstack, probe, "--mode", "status_code", "--status-code", "500", "--for", "2s")
    assert invoke(localstack, probe, {}, ACCOUNT)[1]["statusCode"] == 500
    time.sleep(2.2)
    assert invoke(localstack, probe, {}, ACCOUNT)[1]["statusCode"] == 200
    chaos_off(localstack, probe)


def test_bad_config_is_refused_by_the_cli_and_ignored_by_the_function(localstack, probe, capsys):
    with pytest.raises(SystemExit):
        chaos.main(["on", "--function", probe, "--topology", "no-flow-control",
                    "--endpoint-url", localstack.url, "--mode", "latency", "--min-ms", "1",
                    "--rate", "7"])
    assert "rate = 7.0 is out of range" in capsys.readouterr().err
    # someone writes a bad document by hand: the function runs unfaulted and says why
    ssm = localstack.client("ssm", account=ACCOUNT)
    ssm.put_parameter(Name=f"/lab/faults/{probe}", Type="String", Overwrite=True,
                      Value=json.dumps({"faults": {"denylist": {"hosts": ["(a+)+$"]}}}))
    time.sleep(TTL + 0.2)
    response, payload, _ = invoke(localstack, probe, {}, ACCOUNT)
    assert "FunctionError" not in response and payload["statusCode"] == 200
    assert "pathological regular expression" in wait_logs(
        localstack, probe, ACCOUNT, "lab_faults config rejected")
    assert chaos.main(["status", "--topology", "no-flow-control",
                       "--endpoint-url", localstack.url]) == 0
    assert "REJECTED" in capsys.readouterr().out
    # `off` with no function clears every fault document of the topology
    assert chaos.main(["off", "--topology", "no-flow-control", "--endpoint-url", localstack.url]) == 0
    assert f"{probe}: faults off" in capsys.readouterr().out
    assert chaos.main(["status", "--topology", "no-flow-control",
                       "--endpoint-url", localstack.url]) == 0
    assert "no faults configured" in capsys.readouterr().out
