"""Every ```promql expression of docs/WORKSHOP.md, asked of a real Prometheus (Debian's binary,
the lab's committed config, on a free port: tests/support/prometheus.py) the way an attendee asks
it: pasted into the expression box, as an instant query and as a graph (range query). Prometheus
must accept each one; data is not required (nothing is scraped here)."""

from __future__ import annotations

import time

import pytest

from tests.support.localstack import free_port
from tests.support.prometheus import prometheus_factory  # noqa: F401 - fixture
from tests.unit.test_workshop import blocks

pytestmark = pytest.mark.integration


def test_every_workshop_query_is_accepted(prometheus_factory) -> None:
    exprs = [body.strip() for body in blocks("promql")]
    assert exprs
    # scrape targets where nothing listens: the queries are checked, not the data
    prom = prometheus_factory({"localstack": [f"127.0.0.1:{free_port()}"],
                               "locust": [f"127.0.0.1:{free_port()}"]})
    end = time.time()
    rejected = []
    for expr in exprs:
        try:
            assert prom.query(expr)["resultType"] == "vector", expr
            assert prom.query_range(expr, end - 600, end, 5)["resultType"] == "matrix", expr
        except AssertionError as error:  # the support raises with Prometheus' own message
            rejected.append(str(error))
    assert not rejected, "\n".join(rejected)
