"""Batched Lambda telemetry: counts and log chunks stay within CloudWatch's rules."""

from __future__ import annotations

from lab_platform import lambda_telemetry as telemetry


def test_invocations_and_errors_accumulate_per_function_until_flushed(monkeypatch):
    sent = []
    monkeypatch.setattr(
        "localstack.utils.cloudwatch.cloudwatch_util.publish_lambda_metric",
        lambda metric, value, dims, region_name, account_id: sent.append((account_id, dims["func_name"], metric, value)),
    )
    monkeypatch.setattr(telemetry, "_ensure_flusher", lambda: None)
    for _ in range(3):
        telemetry.record_invocation("Delivery", "111111111111", "us-east-1")
    telemetry.record_error("Delivery", "111111111111", "us-east-1")
    telemetry.record_invocation("Notify", "222222222222", "us-east-1")
    assert telemetry.flush() == 3
    assert sorted(sent) == [
        ("111111111111", "Delivery", "Errors", 1),
        ("111111111111", "Delivery", "Invocations", 4),
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
