"""Gauges read live at scrape time: Lambda concurrency, the SQS queue depths and what the
API destinations hold.

Reading LocalStack's own state (CountingService trackers, SQS queue models) when Prometheus
scrapes means the gauges are never stale and cost nothing between scrapes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from localstack import config
from localstack.services.lambda_.invocation.models import lambda_stores
from localstack.services.sqs.models import sqs_stores
from localstack.utils.aws.arns import extract_account_id_from_arn, extract_region_from_arn
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lab_platform import account_limits, lambda_service
from lab_platform.api_destination import patch as api_destination
from lab_platform.metrics.registry import REGISTRY

LOG = logging.getLogger(__name__)


def _function_name(unqualified_or_qualified_arn: str) -> str:
    # arn:aws:lambda:region:account:function:name[:qualifier]
    return unqualified_or_qualified_arn.split(":")[6]


class LambdaConcurrencyCollector(Collector):
    """ConcurrentExecutions per function and per account, and the account limit."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        per_function = GaugeMetricFamily(
            "lab_lambda_concurrent_executions",
            "Lambda ConcurrentExecutions per function",
            labels=["account", "region", "function_name"],
        )
        per_account = GaugeMetricFamily(
            "lab_lambda_account_concurrent_executions",
            "Lambda ConcurrentExecutions for the account",
            labels=["account", "region"],
        )
        limit = GaugeMetricFamily(
            "lab_lambda_account_concurrency_limit",
            "Lambda account concurrency limit",
            labels=["account", "region"],
        )
        running: dict[tuple[str, str, str], int] = {}
        scopes: set[tuple[str, str]] = set()
        for account, region, store in lambda_stores.iter_stores():
            if store.functions:
                scopes.add((account, region))
            for name in list(store.functions):
                running[(account, region, name)] = 0
        for service in lambda_service.all_services():
            counting = service.counting_service
            for trackers in (
                counting.on_demand_concurrency_trackers,
                counting.provisioned_concurrency_trackers,
            ):
                for (account, region), tracker in list(trackers.items()):
                    scopes.add((account, region))
                    for arn, count in list(tracker.concurrent_executions.items()):
                        key = (account, region, _function_name(arn))
                        running[key] = running.get(key, 0) + count
        totals: dict[tuple[str, str], int] = dict.fromkeys(scopes, 0)
        for (account, region, name), count in sorted(running.items()):
            per_function.add_metric([account, region, name], count)
            totals[(account, region)] = totals.get((account, region), 0) + count
        for (account, region), total in sorted(totals.items()):
            per_account.add_metric([account, region], total)
            limit.add_metric([account, region], account_limits.account_limit(account, config.LAMBDA_LIMITS_CONCURRENT_EXECUTIONS))
        yield per_function
        yield per_account
        yield limit


def _oldest_age(queue, now: float) -> float:
    """Age of the oldest message not yet deleted (visible, in flight or delayed), as on AWS."""
    oldest = None
    candidates = []
    visible = getattr(queue, "visible", None)
    if visible is not None and hasattr(visible, "queue"):
        candidates.append(list(visible.queue))
    for group_queue in getattr(queue, "message_groups", {}).values():  # FIFO queues
        candidates.append(list(getattr(group_queue, "messages", [])))
    candidates.append(list(getattr(queue, "inflight", ())))
    candidates.append(list(getattr(queue, "delayed", ())))
    for messages in candidates:
        for message in messages:
            created = getattr(message, "created", None)
            if created is not None and not getattr(message, "deleted", False):
                oldest = created if oldest is None else min(oldest, created)
    return 0.0 if oldest is None else max(0.0, now - oldest)


class SqsQueueCollector(Collector):
    """ApproximateNumberOfMessagesVisible / NotVisible / Delayed and ApproximateAgeOfOldestMessage."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        names = ["account", "region", "queue_name"]
        visible = GaugeMetricFamily(
            "lab_sqs_messages_visible", "SQS ApproximateNumberOfMessagesVisible", labels=names
        )
        not_visible = GaugeMetricFamily(
            "lab_sqs_messages_not_visible",
            "SQS ApproximateNumberOfMessagesNotVisible (in flight)",
            labels=names,
        )
        delayed = GaugeMetricFamily(
            "lab_sqs_messages_delayed", "SQS ApproximateNumberOfMessagesDelayed", labels=names
        )
        age = GaugeMetricFamily(
            "lab_sqs_oldest_message_age_seconds", "SQS ApproximateAgeOfOldestMessage", labels=names
        )
        now = time.time()
        for account, region, store in sqs_stores.iter_stores():
            for name, queue in list(store.queues.items()):
                key = [account, region, name]
                try:
                    visible.add_metric(key, queue.approximate_number_of_messages)
                    not_visible.add_metric(key, queue.approximate_number_of_messages_not_visible)
                    delayed.add_metric(key, queue.approximate_number_of_messages_delayed)
                    age.add_metric(key, _oldest_age(queue, now))
                except Exception as error:  # noqa: BLE001 - a queue deleted mid-scrape
                    LOG.debug("skipping queue %s in metrics: %s", name, error)
        yield visible
        yield not_visible
        yield delayed
        yield age


class ApiDestinationBacklogCollector(Collector):
    """Events each API destination holds: AWS publishes no such metric, but its absence is why a
    drain could not tell "all sent" from "waiting out a back-off" (report.experiment)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "lab_events_api_destination_backlog",
            "Events an API destination holds: waiting at its rate limit, between retries, or being sent",
            labels=["account", "region", "api_destination"],
        )
        for arn, events in sorted(api_destination.backlog().items()):
            family.add_metric([extract_account_id_from_arn(arn), extract_region_from_arn(arn),
                               api_destination.destination_name(arn)], events)
        yield family


_registered = False


def register() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(LambdaConcurrencyCollector())
        REGISTRY.register(SqsQueueCollector())
        REGISTRY.register(ApiDestinationBacklogCollector())
        _registered = True
