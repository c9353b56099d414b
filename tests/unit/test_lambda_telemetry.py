"""Batched Lambda telemetry: counts and log chunks stay within CloudWatch's rules."""

from __future__ import annotations

from types import SimpleNamespace

from lab_platform import lambda_telemetry as telemetry


def test_invocations_and_errors_accumulate_per_function_and_go_in_one_call_per_account(monkeypatch):
    calls = []

    class CloudWatch:
        def __init__(self, account):
            self.account = account

        def put_metric_data(self, Namespace, MetricData):  # noqa: N803 - boto3's names
            calls.append((self.account, Namespace, MetricData))

    monkeypatch.setattr(
        "localstack.aws.connect.connect_to",
        lambda aws_access_key_id, region_name: SimpleNamespace(cloudwatch=CloudWatch(aws_access_key_id)),
    )
    monkeypatch.setattr(telemetry, "_ensure_flusher", lambda: None)
    for _ in range(3):
        telemetry.record_invocation("Delivery", "111111111111", "us-east-1")
    telemetry.record_error("Delivery", "111111111111", "us-east-1")
    telemetry.record_invocation("Notify", "111111111111", "us-east-1")
    telemetry.record_invocation("Notify", "222222222222", "us-east-1")
    assert telemetry.flush() == 4
    assert sorted(account for account, _, _ in calls) == ["111111111111", "222222222222"]
    sent = sorted(
        (account, d["Dimensions"][0]["Value"], d["MetricName"], d["Value"])
        for account, namespace, data in calls for d in data if namespace == "AWS/Lambda"
    )
    assert sent == [
        ("111111111111", "Delivery", "Errors", 1),
        ("111111111111", "Delivery", "Invocations", 4),
        ("111111111111", "Notify", "Invocations", 1),
        ("222222222222", "Notify", "Invocations", 1),
    ]
    assert telemetry.flush() == 0


def test_log_chunks_respect_event_count_and_byte_limits():
    events = [{"timestamp": 1, "message": "x" * 1000 + "\n"} for _ in range(2000)]
    chunks = list(telemetry._chunks(events))
    assert sum(len(c) for c in chunks) == 2000
    for chunk in chunks:
        assert len(chunk) <= telemetry.MAX_BATCH_EVENTS
        assert sum(len(e["message"]) + 26 for e in chunk) <= telemetry.MAX_BATCH_BYTES
    assert len(chunks) == 3
