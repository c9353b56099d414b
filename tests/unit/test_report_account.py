"""The account report's arithmetic and rendering, over a Prometheus that answers from a table."""

from __future__ import annotations

import pytest

from report.account import AccountError, gather, render
from report.prom import Series

ACCOUNT = "444444444444"
START, END = 1000.0, 1100.0


class TableProm:
    """Answers each query with the series of the first metric name it contains."""

    def __init__(self, ranges: dict[str, list[Series]], instants: dict[str, list[Series]]) -> None:
        self.ranges, self.instants, self.asked = ranges, instants, []

    def _answer(self, table: dict[str, list[Series]], query: str) -> list[Series]:
        self.asked.append(query)
        assert f'account="{ACCOUNT}"' in query, query
        for metric, series in table.items():
            if f"({metric}{{" in query or f" {metric}{{" in query:
                return series
        return []

    def range(self, query, start, end, step):
        assert end == END and step == 5.0
        return self._answer(self.ranges, query)

    def instant(self, query, at=None):
        assert at == END
        return self._answer(self.instants, query)


def counter(labels: dict[str, str], *values: float) -> Series:
    return Series(labels, [(START + 5 * i, v) for i, v in enumerate(values)])


def gauge(labels: dict[str, str], value: float) -> Series:
    return Series(labels, [(END, value)])


def test_counters_are_counted_through_a_restart_and_rows_gather_per_resource():
    prom = TableProm(
        ranges={
            "lab_lambda_invocations_total": [counter({"function_name": "Delivery"}, 10, 40, 5, 25)],  # restart
            "lab_lambda_errors_total": [counter({"function_name": "Delivery"}, 0, 3, 6)],
            "lab_lambda_throttles_total": [counter({"function_name": "Delivery"}, 0, 100)],
            "lab_lambda_destination_deliveries_total": [
                counter({"function_name": "Delivery", "destination_type": "on_failure"}, 0, 7)],
            "lab_apigateway_requests_total": [counter({"api_name": "courier", "status_class": "2xx"}, 0, 50),
                                              counter({"api_name": "courier", "status_class": "4xx"}, 0, 20)],
            "lab_apigateway_throttled_total": [counter({"api_name": "courier"}, 0, 20)],
            "lab_events_matched_events_total": [counter({"rule": "notify"}, 0, 60)],
        },
        instants={
            "lab_lambda_account_concurrent_executions": [gauge({}, 388)],
            "lab_lambda_account_concurrency_limit": [gauge({}, 400)],
            "lab_lambda_concurrent_executions": [gauge({"function_name": "Delivery"}, 380)],
            "lab_lambda_duration_seconds_bucket": [gauge({"function_name": "Delivery"}, 28.5)],
            "lab_sqs_messages_visible": [gauge({"queue_name": "dlq"}, 12)],
        },
    )
    figures = gather(prom, ACCOUNT, START, END)
    delivery = figures.functions["Delivery"]
    # 10 -> 40 (+30), restart to 5 (+5), -> 25 (+20); the series started at the window's start
    assert delivery.invocations == 55
    assert (delivery.errors, delivery.throttles, delivery.peak_concurrency) == (6, 100, 380)
    assert delivery.destinations == {"on_failure": 7} and delivery.duration_p95 == 28.5
    assert figures.apis["courier"].requests == 70 and figures.apis["courier"].throttled == 20
    assert figures.apis["courier"].by_class == {"2xx": 50, "4xx": 20}
    assert figures.queues["dlq"].peak_visible == 12 and figures.rules["notify"].matched == 60
    assert (figures.peak_account_concurrency, figures.account_limit) == (388, 400)
    text = render(figures)
    assert "Peak account concurrency: 388 of its limit 400." in text
    assert "| Delivery | 55 | 6 | 89.1% | 100 | 380 | 28.50 s | 0 | 0 | on_failure 7 |" in text
    assert "| courier | 70 | 50 | 20 | 0 | 20 | - |" in text


def test_an_account_with_nothing_says_what_to_check_and_bad_input_is_refused():
    figures = gather(TableProm({}, {}), ACCOUNT, START, END)
    assert figures.empty and "was the app deployed to this account" in render(figures)
    with pytest.raises(AccountError, match="not an account id"):
        gather(TableProm({}, {}), "4444", START, END)
    with pytest.raises(AccountError, match="range is empty"):
        gather(TableProm({}, {}), ACCOUNT, END, START)
