"""Extract Embedded Metric Format metrics from CloudWatch Logs, as CloudWatch does on AWS.

AWS: log events in a Lambda function's log group (and any PutLogEvents call sent with the header
`x-amzn-logs-format: json/emf`) that carry an `_aws.CloudWatchMetrics` block become CloudWatch
metrics, asynchronously.
LocalStack 4.14: the lines stay plain log text; no metric is created.
Here: `LogsProvider.put_log_events` is wrapped; after the logs are stored, eligible events are
handed to a worker thread which records them in the Prometheus EMF store (live) and publishes
them with PutMetricData (batched, so a busy function does not cost one API call per line).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from localstack.services.logs.provider import LogsProvider
from localstack.utils.patch import Patches

from lab_platform.cloudwatch_publish import put_metric_data
from lab_platform.emf.parser import EmfDatum, parse_line
from lab_platform.emf.store import STORE

LOG = logging.getLogger(__name__)

LAMBDA_LOG_GROUP_PREFIX = "/aws/lambda/"
EMF_HEADER = "x-amzn-logs-format"
FLUSH_INTERVAL = 1.0  # seconds: CloudWatch within about a second of the log line, one call a second
MAX_VALUES_PER_DATUM = 150  # PutMetricData limit


def is_eligible(log_group_name: str, headers: Any) -> bool:
    if log_group_name.startswith(LAMBDA_LOG_GROUP_PREFIX):
        return True
    fmt = (headers.get(EMF_HEADER) if headers is not None else None) or ""
    return "emf" in fmt.lower()


class EmfWorker:
    """Parses log messages off the request path and publishes their metrics."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, str, list[str]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, account: str, region: str, messages: list[str]) -> None:
        self._ensure_started()
        self._queue.put((account, region, messages))

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="lab-emf", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        pending: dict[tuple[str, str, str], list[EmfDatum]] = defaultdict(list)
        deadline = time.monotonic() + FLUSH_INTERVAL
        while True:
            try:
                account, region, messages = self._queue.get(
                    timeout=max(0.0, deadline - time.monotonic())
                )
                for message in messages:
                    for datum in parse_line(message):
                        STORE.record(datum, account, region)
                        pending[(account, region, datum.namespace)].append(datum)
            except queue.Empty:
                pass
            except Exception:  # noqa: BLE001 - never let one bad line stop the worker
                LOG.exception("EMF extraction failed")
            if time.monotonic() >= deadline:
                for key, data in pending.items():
                    self._publish(*key, data)
                pending.clear()
                deadline = time.monotonic() + FLUSH_INTERVAL

    @staticmethod
    def _publish(account: str, region: str, namespace: str, data: list[EmfDatum]) -> None:
        datums = [to_metric_datum(d) for d in data]
        try:
            put_metric_data(account, region, namespace, datums)
        except Exception as error:  # noqa: BLE001 - CloudWatch disabled or shutting down
            LOG.warning("could not publish %d EMF metric(s) to CloudWatch: %s", len(datums), error)


def to_metric_datum(datum: EmfDatum) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "MetricName": datum.name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in datum.dimensions],
        "Timestamp": datetime.fromtimestamp(datum.timestamp_ms / 1000, tz=UTC),
        "Unit": datum.unit,
        "StorageResolution": datum.storage_resolution,
    }
    if len(datum.values) == 1:
        entry["Value"] = datum.values[0]
    else:
        entry["Values"] = list(datum.values[:MAX_VALUES_PER_DATUM])
    return entry


WORKER = EmfWorker()


def observe_log_events(account: str, region: str, log_group_name: str, log_events, headers: Any = None) -> None:
    """Hand a stored batch's EMF lines to the worker (PutLogEvents, or Lambda's own log shipping)."""
    try:
        if is_eligible(log_group_name, headers):
            messages = [
                e.get("message", "") for e in log_events or () if "_aws" in e.get("message", "")
            ]
            if messages:
                WORKER.submit(account, region, messages)
    except Exception:  # noqa: BLE001 - metric extraction must never fail the log call
        LOG.exception("EMF extraction skipped")


def _put_log_events(fn, self, context, log_group_name, log_stream_name, log_events, *args, **kw):
    response = fn(self, context, log_group_name, log_stream_name, log_events, *args, **kw)
    headers = context.request.headers if context.request is not None else None
    observe_log_events(context.account_id, context.region, log_group_name, log_events, headers)
    return response


def patches() -> Patches:
    p = Patches()
    p.function(LogsProvider.put_log_events, _put_log_events)
    return p
