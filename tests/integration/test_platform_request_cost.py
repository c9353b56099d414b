"""The request-cost patches keep LocalStack's answers unchanged (lab_platform/request_cost.py,
lab_platform/cloudwatch_store.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.integration

ACCOUNT = "333333333333"


def _stats(cloudwatch, name: str) -> dict:
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="RequestCost", MetricName=name, Dimensions=[{"Name": "case", "Value": "batch"}],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1), Period=600,
        Statistics=["Sum", "SampleCount", "Minimum", "Maximum"],
    )["Datapoints"]
    assert len(points) == 1, points
    return points[0]


def test_one_put_metric_data_call_stores_every_kind_of_datum(localstack):
    """Values, Values with Counts and statistic sets in one call: the statistics add up exactly."""
    cloudwatch = localstack.client("cloudwatch", account=ACCOUNT)
    dims = [{"Name": "case", "Value": "batch"}]
    now = datetime.now(UTC)
    cloudwatch.put_metric_data(Namespace="RequestCost", MetricData=[
        {"MetricName": "Single", "Dimensions": dims, "Timestamp": now, "Value": 2.0, "Unit": "Count"},
        {"MetricName": "Single", "Dimensions": dims, "Timestamp": now, "Value": 5.0, "Unit": "Count"},
        {"MetricName": "Many", "Dimensions": dims, "Timestamp": now, "Values": [1.0, 10.0], "Counts": [3, 2],
         "Unit": "Milliseconds"},
        {"MetricName": "Set", "Dimensions": dims, "Timestamp": now, "Unit": "Count",
         "StatisticValues": {"SampleCount": 4, "Sum": 20.0, "Minimum": 1.0, "Maximum": 9.0}},
    ])
    single = _stats(cloudwatch, "Single")
    assert (single["Sum"], single["SampleCount"], single["Minimum"], single["Maximum"]) == (7.0, 2.0, 2.0, 5.0)
    many = _stats(cloudwatch, "Many")
    assert (many["Sum"], many["SampleCount"], many["Minimum"], many["Maximum"]) == (23.0, 5.0, 1.0, 10.0)
    stat_set = _stats(cloudwatch, "Set")
    assert (stat_set["Sum"], stat_set["SampleCount"], stat_set["Minimum"], stat_set["Maximum"]) == (20.0, 4.0, 1.0, 9.0)


def test_moto_backed_services_answer_through_the_cached_method_lists(localstack):
    """SSM goes through moto's dispatch, whose method list is now cached per class."""
    ssm = localstack.client("ssm", account=ACCOUNT)
    ssm.put_parameter(Name="/request-cost/p", Value="v1", Type="String")
    assert ssm.get_parameter(Name="/request-cost/p")["Parameter"]["Value"] == "v1"
    ssm.put_parameter(Name="/request-cost/p", Value="v2", Type="String", Overwrite=True)
    assert ssm.get_parameter(Name="/request-cost/p")["Parameter"]["Value"] == "v2"
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/request-cost/missing")
