"""The platform's own metrics into CloudWatch: Lambda's `AWS/Lambda` and the EMF namespaces.

One PutMetricData call takes at most 1,000 datums (the CloudWatch API reference), so a larger
batch goes in several calls. Errors are raised: each caller decides how loudly to report them.
"""

from __future__ import annotations

from typing import Any

MAX_DATUMS_PER_CALL = 1000  # PutMetricData's limit


def put_metric_data(account: str, region: str, namespace: str, datums: list[dict[str, Any]]) -> None:
    from localstack.aws.connect import connect_to  # at call time: tests stand a fake in its place

    client = connect_to(aws_access_key_id=account, region_name=region).cloudwatch
    for start in range(0, len(datums), MAX_DATUMS_PER_CALL):
        client.put_metric_data(Namespace=namespace, MetricData=datums[start:start + MAX_DATUMS_PER_CALL])
