"""The platform's metrics written straight into CloudWatch's store read back as a request's would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from localstack.services.cloudwatch.cloudwatch_database_helper import CloudwatchDatabase

from lab_platform import cloudwatch_publish


@pytest.fixture
def metrics_db(tmp_path, monkeypatch):
    path = tmp_path / "cloudwatch" / "metrics.db"
    monkeypatch.setattr(CloudwatchDatabase, "CLOUDWATCH_DATA_ROOT", str(path.parent))
    monkeypatch.setattr(CloudwatchDatabase, "METRICS_DB", str(path))
    monkeypatch.setattr(CloudwatchDatabase, "METRICS_DB_READ_ONLY", f"file:{path}?mode=ro")
    monkeypatch.setattr(cloudwatch_publish, "_database", None)
    patches = cloudwatch_publish.patches()
    patches.apply()
    yield path
    patches.undo()


def test_datums_go_into_the_providers_database_without_a_request(metrics_db, monkeypatch):
    monkeypatch.setattr("localstack.aws.connect.connect_to", lambda **_: pytest.fail("a request was made"))
    now = datetime.now(UTC)
    datums = [{"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": f"F{i}"}],
               "Timestamp": now, "Value": i + 1} for i in range(cloudwatch_publish.MAX_DATUMS_PER_CALL + 5)]
    cloudwatch_publish.put_metric_data("111111111111", "us-east-1", "AWS/Lambda", datums)
    stored = CloudwatchDatabase().get_all_metric_data()
    assert len(stored) == len(datums)
    assert {(m["account"], m["ns"], m["n"]) for m in stored} == {("111111111111", "AWS/Lambda", "Invocations")}
    assert sum(m["v"] for m in stored) == sum(d["Value"] for d in datums)


def test_what_the_provider_refuses_is_refused(metrics_db):
    both = [{"MetricName": "M", "Value": 1.0, "Values": [1.0, 2.0]}]
    with pytest.raises(Exception, match="mutually exclusive"):
        cloudwatch_publish.put_metric_data("111111111111", "us-east-1", "Lab", both)
    assert not metrics_db.exists() or CloudwatchDatabase().get_all_metric_data() == []
