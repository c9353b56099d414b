"""The platform's own metrics into CloudWatch: Lambda's `AWS/Lambda` and the EMF namespaces.

One PutMetricData call takes at most 1,000 datums (the CloudWatch API reference), so a larger
batch goes in several calls. Errors are raised: each caller decides how loudly to report them.

How a batch reaches CloudWatch (`LAB_PATCH_CLOUDWATCH_DIRECT`):
AWS: Lambda's platform metrics and the EMF metrics that CloudWatch Logs extracts are written by
AWS inside CloudWatch; no PutMetricData request of the account's is made or billed for them.
LocalStack 4.14: Lambda's metrics go through its internal client, a full PutMetricData request
(botocore serialises it, the gateway's handler chain parses it) that ends in the provider's
`CloudwatchDatabase.add_metric_data`.
The patch: the same datums, validated as the provider validates them, written into the same
database, without the request. GetMetricData, GetMetricStatistics and ListMetrics read them as
before. Measured with `benchmarks.order_cost` (one topology, 5 orders/s): CloudWatch requests
0.40 -> 0 per order, LocalStack's CPU per order in the CloudWatch handler chain 0.78 ms -> 0
(see lab_platform/README.md for the whole table).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from localstack.utils.patch import Patch, Patches

MAX_DATUMS_PER_CALL = 1000  # PutMetricData's limit


def put_metric_data(account: str, region: str, namespace: str, datums: list[dict[str, Any]]) -> None:
    for start in range(0, len(datums), MAX_DATUMS_PER_CALL):
        _send(account, region, namespace, datums[start:start + MAX_DATUMS_PER_CALL])


def _send(account: str, region: str, namespace: str, datums: list[dict[str, Any]]) -> None:
    """LocalStack's own way: a PutMetricData request through its internal client."""
    from localstack.aws.connect import connect_to  # at call time: tests stand a fake in its place

    client = connect_to(aws_access_key_id=account, region_name=region).cloudwatch
    client.put_metric_data(Namespace=namespace, MetricData=datums)


_database: Any = None
_database_lock = threading.Lock()


def _metrics_database() -> Any:
    """The SQLite store behind LocalStack's CloudWatch provider (v2, 4.14's default).

    Its own instance over the same file: `CloudwatchDatabase()` creates the tables only when the
    file is missing, exactly as the provider does, and SQLite serialises writers across
    connections, so this and the provider's writes never interleave within a transaction."""
    global _database
    if _database is None:
        with _database_lock:
            if _database is None:
                from localstack.services.cloudwatch.cloudwatch_database_helper import CloudwatchDatabase

                _database = CloudwatchDatabase()
    return _database


def _write_to_store(account: str, region: str, namespace: str, datums: list[dict[str, Any]]) -> None:
    """What the provider's `put_metric_data` does with a request, minus the request."""
    from localstack.services.cloudwatch.provider_v2 import _validate_parameters_for_put_metric_data

    _validate_parameters_for_put_metric_data(datums)
    _metrics_database().add_metric_data(account, region, namespace, datums)


def patches() -> Patches:
    return Patches([Patch(sys.modules[__name__], "_send", _write_to_store)])
