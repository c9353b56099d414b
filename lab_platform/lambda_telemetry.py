"""Lambda telemetry shipped in batches: CloudWatch metrics once a second, logs per stream.

Metrics.

LocalStack 4.14 starts a thread for every invocation that calls CloudWatch PutMetricData through
an internal HTTP client and writes SQLite. Measured with py-spy on a warm-invoke loop, that was
20% of LocalStack's busy CPU, four times the invoke path itself; at hundreds of invocations per
second it is what saturates two cores. Here each invocation adds to an in-memory counter, and one
flusher thread publishes the sums once a second, one PutMetricData per account and region (one
datum per function and metric, Value = count), so CloudWatch's Sum of Invocations and Errors is
unchanged.

Logs. LocalStack's LogHandler makes one internal PutLogEvents call per invocation (19% of busy
CPU in the same profile). The batched loop drains whatever invocations queued meanwhile, a
quarter of a second at most, and stores one batch per log stream within CloudWatch's limits
(10,000 events, 1 MB) straight into the Logs store (`_store_directly`: a PutLogEvents through the
in-memory client cost 2.7 ms of CPU, its serialising and parsing more than the storing).

Measured with `benchmarks.order_cost` (one topology, 5 orders/s): LocalStack's CPU per order
33 -> 22-24 ms with both changes and API Gateway's in-process invoke; Logs requests 2.5 per order
-> none, CloudWatch's 1.4 -> 0.4.

`LAB_PATCH_LAMBDA_TELEMETRY_BATCHING=0` restores LocalStack's own behaviour for both.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter

from localstack.runtime import hooks

from lab_platform import settings
from lab_platform.cloudwatch_publish import put_metric_data

LOG = logging.getLogger(__name__)
FLUSH_SECONDS = 1.0

# (account, region, function, metric) -> count since the last flush
_pending: Counter[tuple[str, str, str, str]] = Counter()
_lock = threading.Lock()
_flusher: threading.Thread | None = None


def _add(function_name: str, account_id: str, region_name: str, *metrics: str) -> None:
    with _lock:
        for metric in metrics:
            _pending[(account_id, region_name, function_name, metric)] += 1
    _ensure_flusher()


def record_invocation(function_name: str, account_id: str, region_name: str) -> None:
    _add(function_name, account_id, region_name, "Invocations")


def record_error(function_name: str, account_id: str, region_name: str) -> None:
    _add(function_name, account_id, region_name, "Invocations", "Errors")


def flush() -> int:
    """Publish what accumulated, one PutMetricData per account and region; returns the datums sent."""
    from datetime import UTC, datetime

    with _lock:
        batch = dict(_pending)
        _pending.clear()
    now = datetime.now(UTC)
    by_place: dict[tuple[str, str], list[dict]] = {}
    for (account, region, function, metric), count in batch.items():
        by_place.setdefault((account, region), []).append({
            "MetricName": metric, "Dimensions": [{"Name": "FunctionName", "Value": function}],
            "Timestamp": now, "Value": count,
        })
    for (account, region), datums in by_place.items():
        try:
            put_metric_data(account, region, "AWS/Lambda", datums)
        except Exception as error:  # noqa: BLE001 - metrics must never break invocations
            LOG.debug("publishing %d Lambda metric(s) for %s failed: %s", len(datums), account, error)
    return len(batch)


def _run_flusher() -> None:
    stop = threading.Event()
    while not stop.wait(FLUSH_SECONDS):
        flush()


def _ensure_flusher() -> None:
    global _flusher
    if _flusher is None:
        with _lock:
            if _flusher is None:
                _flusher = threading.Thread(target=_run_flusher, name="lab-lambda-cw-metrics", daemon=True)
                _flusher.start()


MAX_BATCH_EVENTS = 10_000
# CloudWatch Logs on AWS shows lines seconds after they are written; a quarter of a second of
# batching is invisible to a person and turns tens of calls per second into four.
LOG_BATCH_WINDOW_SECONDS = 0.25
MAX_BATCH_BYTES = 900_000  # PutLogEvents allows 1,048,576 bytes incl. 26 per event


def _batched_log_loop(self, *args, **kwargs) -> None:
    """LogHandler.run_log_loop, one PutLogEvents per stream for all invocations queued meanwhile."""
    import queue
    import time

    from localstack.aws.connect import connect_to
    from localstack.services.lambda_.invocation.logs import QUEUE_SHUTDOWN
    from localstack.utils.aws.client_types import ServicePrincipal

    logs_client = connect_to.with_assumed_role(
        region_name=self.region, role_arn=self.role_arn, service_principal=ServicePrincipal.lambda_
    ).logs
    # the function's execution role is the account its logs belong to, as the client's calls would
    account = self.role_arn.split(":")[4]
    while not self._shutdown_event.is_set():
        items = [self.log_queue.get()]
        # collect for a moment: at tens of invocations per second, one call carries many
        window_ends = time.monotonic() + LOG_BATCH_WINDOW_SECONDS
        while len(items) < 500 and items[-1] is not QUEUE_SHUTDOWN:
            remaining = window_ends - time.monotonic()
            if remaining <= 0:
                break
            try:
                items.append(self.log_queue.get(timeout=remaining))
            except queue.Empty:
                break
        stopping = any(item is QUEUE_SHUTDOWN for item in items)
        streams: dict[tuple[str, str], list[dict]] = {}
        now = int(time.time() * 1000)
        for item in items:
            if item is QUEUE_SHUTDOWN:
                continue
            events = streams.setdefault((item.log_group, item.log_stream), [])
            # split by newline, keep the newlines, drop empty lines (CloudWatch rejects them)
            events.extend({"timestamp": now, "message": line + "\n"} for line in item.logs.split("\n") if line)
        for (group, stream), events in streams.items():
            for chunk in _chunks(events):
                _put_events(logs_client, group, stream, chunk, self.region, account)
        if stopping:
            return


def _chunks(events: list[dict]):
    chunk: list[dict] = []
    size = 0
    for event in events:
        event_size = len(event["message"].encode()) + 26
        if chunk and (len(chunk) >= MAX_BATCH_EVENTS or size + event_size > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(event)
        size += event_size
    if chunk:
        yield chunk


def _put_events(logs_client, group: str, stream: str, events: list[dict], region: str, account: str) -> None:
    try:
        if _store_directly(account, region, group, stream, events):
            return
        try:
            logs_client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except logs_client.exceptions.ResourceNotFoundException:
            try:
                logs_client.create_log_group(logGroupName=group)
            except logs_client.exceptions.ResourceAlreadyExistsException:
                pass
            try:
                logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
            except logs_client.exceptions.ResourceAlreadyExistsException:
                pass
            logs_client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    except Exception as error:  # noqa: BLE001 - as LocalStack: logs must never break invocations
        LOG.warning("Error saving logs to group %s in region %s: %s", group, region, error)


def _store_directly(account: str, region: str, group: str, stream: str, events: list[dict]) -> bool:
    """Lambda's own log batch into the Logs store, without a PutLogEvents request; False: use one.

    What a PutLogEvents request would add is serialising the batch with botocore and parsing it
    again in LocalStack's handler chain (2.7 ms of CPU per call, measured: more than the storing).
    The store is moto's, as behind the request, so subscription filters still fire, and the EMF
    extraction that wraps the provider gets the events here. Metric filters live in the provider
    itself: an account that has any takes the request path, and LocalStack's own behaviour.
    """
    from localstack.services.logs.models import get_moto_logs_backend
    from moto.logs.exceptions import ResourceNotFoundException

    backend = get_moto_logs_backend(account, region)
    if backend.filters.metric_filters:
        return False
    try:
        backend.put_log_events(group, stream, events)
    except ResourceNotFoundException:
        if group not in backend.groups:
            backend.create_log_group(group, {})
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        backend.put_log_events(group, stream, events)
    if settings.enabled("LAB_PATCH_EMF"):
        from lab_platform.emf.patch import observe_log_events

        observe_log_events(account, region, group, events)
    return True


def _inline_metric_threads(original):
    """version_manager starts a thread just to record the metric: run the (now cheap) call inline."""

    def start_thread(function, *args, name: str | None = None, **kwargs):
        if name and name.startswith("record-cloudwatch-metric"):
            function()
            return None
        return original(function, *args, name=name, **kwargs)

    return start_thread


@hooks.on_infra_start()
def lab_lambda_telemetry_batching() -> None:
    if os.environ.get("LAB_PATCH_LAMBDA_TELEMETRY_BATCHING", "1").strip().lower() in {"0", "false", "no", "off"}:
        return
    from localstack.services.lambda_.invocation import logs, version_manager

    version_manager.record_cw_metric_invocation = record_invocation
    version_manager.record_cw_metric_error = record_error
    version_manager.start_thread = _inline_metric_threads(version_manager.start_thread)
    logs.LogHandler.run_log_loop = _batched_log_loop
    LOG.info("lab platform: Lambda metrics batched every %.0f s, logs batched per stream", FLUSH_SECONDS)
