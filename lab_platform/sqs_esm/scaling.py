"""SQS event source mapping pollers that keep up to N batches in flight.

AWS: an SQS event source mapping invokes the function with many batches at once: up to
`ScalingConfig.MaximumConcurrency` when set, else scaling with the backlog (5, then +300 per
minute, up to 1,250), always capped by the function's reserved concurrency and the account's
concurrency (a throttled batch is retried until its visibility timeout, then reappears in the
queue and counts towards maxReceiveCount / the DLQ). Pollers long-poll: a waiting message is picked
up at once. Failed batches reappear after the visibility timeout; with `ReportBatchItemFailures`
only the reported items do.
LocalStack 4.14: one poller thread per mapping handles one batch at a time (a synchronous invoke),
then sleeps `LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC` (1 s), backing off up to 10 s when the
queue was empty: 30 messages of 3 s took 92 s at a concurrency of 1; MaximumConcurrency ignored.
Here: `SqsPoller.poll_events`, when called from an ESM worker, becomes a dispatcher that runs until
the worker stops: it receives one batch ahead, starts it as soon as fewer than the allowed batches
are in flight (a slot frees when an invocation returns) and hands it to a worker thread, which runs LocalStack's own `handle_messages` (filtering, invoke,
partial batch failures, deletes). The batch is invoked with `LambdaService.invoke` in process (the
call the Invoke API makes after parsing) instead of an HTTP request to LocalStack's own gateway.
Pipes keep LocalStack's poller. Reserved concurrency set by CloudFormation (a SAM app's
`ReservedConcurrentExecutions`) reaches these throttles only through `cfn_reserved_concurrency.py`:
LocalStack 4.14's provider dropped it, so such a mapping was never throttled and nothing was
dead-lettered.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from botocore.exceptions import ClientError
from localstack.aws.api.lambda_ import TooManyRequestsException
from localstack.aws.api.sqs import MessageSystemAttributeName
from localstack.services.lambda_.event_source_mapping.esm_worker import EsmWorker
from localstack.services.lambda_.event_source_mapping.pollers.sqs_poller import (
    DEFAULT_MAX_RECEIVE_COUNT,
    DEFAULT_MAX_WAIT_TIME_SECONDS,
    SqsPoller,
    split_by_message_group_id,
)
from localstack.utils.patch import Patches

from lab_platform import lambda_service
from lab_platform.sqs_esm.concurrency import MAX_CONCURRENCY, ConcurrencyLimit
from lab_platform.workers import ElasticPool

LOG = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 1  # long-poll wait when no batching window is set (returns on first message)
THROTTLE_BACKOFF = (0.1, 2.0)  # first and largest pause between retries of a throttled batch


class Dispatcher:
    """Runs one mapping's batches concurrently until its worker's shutdown event is set."""

    def __init__(self, worker: EsmWorker, poller: SqsPoller) -> None:
        self.worker = worker
        self.poller = poller
        scaling = worker.esm_config.get("ScalingConfig") or {}
        self.limit = ConcurrencyLimit(scaling.get("MaximumConcurrency"))
        self.capacity = self.limit.maximum or MAX_CONCURRENCY
        self.in_flight = 0
        self.cond = threading.Condition()
        self.stop = worker._shutdown_event
        self.visibility_timeout = self._visibility_timeout()
        self.pool = ElasticPool(self.capacity, name=f"lab-esm-{worker.uuid[:8]}")
        self._batch = threading.local()  # per worker thread: the batch it runs
        self._invoke_in_process()
        self._free_slot_after_invoke()

    def _visibility_timeout(self) -> float:
        try:
            attributes = self.poller.source_client.get_queue_attributes(
                QueueUrl=self.poller.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            return float(attributes.get("VisibilityTimeout", 30))
        except Exception:  # noqa: BLE001 - fall back to the SQS default
            return 30.0

    def _invoke_in_process(self) -> None:
        # LocalStack's sender invokes through an HTTP client of its own gateway (10 pooled
        # connections, a request parse and serialisation per batch); the in-process client
        # calls the same LambdaService.invoke the Invoke API handler would.
        sender = getattr(self.poller.processor, "sender", None)
        if sender is not None and lambda_service.current() is not None:
            sender.target_client = lambda_service.InProcessLambdaClient()

    def _free_slot_after_invoke(self) -> None:
        # MaximumConcurrency bounds concurrent invocations: a batch's slot is free once its
        # invocation returned, while LocalStack still deletes its messages (an HTTP call).
        processor = self.poller.processor
        original = getattr(processor, "_lab_original", processor.process_events_batch)
        processor._lab_original = original

        def process_events_batch(events: Any) -> None:
            try:
                original(events)
            except Exception as error:
                if not is_throttle(error):  # a throttled batch keeps its slot while it retries
                    self._release_slot(early=True)
                raise
            self._release_slot(early=True)

        processor.process_events_batch = process_events_batch

    def _release_slot(self, early: bool = False) -> None:
        """Free the calling worker's batch slot, once (`early`: right after the invocation,
        not for FIFO batches, whose message groups are invoked one after the other)."""
        if early and not getattr(self._batch, "early", False):
            return
        if getattr(self._batch, "holds_slot", False):
            self._batch.holds_slot = False
            with self.cond:
                self.in_flight -= 1
                self.cond.notify_all()

    def run(self) -> None:
        # One batch is received ahead (as AWS pollers poll ahead): when a slot frees, the next
        # batch starts without waiting for a ReceiveMessage round trip.
        ahead: list[dict[str, Any]] = []
        received_at = 0.0  # their visibility timeout runs from here
        try:
            while not self.stop.is_set():
                if not ahead:
                    received_at = time.monotonic()
                    ahead = self._receive()
                    if not ahead:
                        with self.cond:
                            if self.in_flight == 0:
                                self.limit.drained()
                        continue
                    self.limit.saw_messages()
                with self.cond:
                    while self.in_flight >= self.limit.allowed() and not self.stop.is_set():
                        self.cond.wait(0.5)
                    if self.stop.is_set():
                        break  # the batch received ahead reappears after its visibility timeout
                    self.in_flight += 1
                self.pool.submit(self._run_batch, ahead, received_at)
                ahead = []
        finally:
            self.pool.shutdown(wait=False)

    def _receive(self) -> list[dict[str, Any]]:
        window = self.poller.maximum_batching_window
        response = self.poller.source_client.receive_message(
            QueueUrl=self.poller.queue_url,
            MaxNumberOfMessages=min(self.poller.batch_size, DEFAULT_MAX_RECEIVE_COUNT),
            WaitTimeSeconds=min(window, DEFAULT_MAX_WAIT_TIME_SECONDS)
            if window
            else IDLE_WAIT_SECONDS,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=[MessageSystemAttributeName.All],
            sqs_override_max_message_count=self.poller.batch_size,
            sqs_override_wait_time_seconds=window,
        )
        return response.get("Messages") or []

    def _run_batch(self, messages: list[dict[str, Any]], received_at: float) -> None:
        self._batch.holds_slot, self._batch.early = True, False
        try:
            if self.poller.is_fifo_queue:
                chunks = list(split_by_message_group_id(messages).values())
            else:
                chunks = [messages]
                self._batch.early = True
            for chunk in chunks:
                self._handle_with_throttle_retries(chunk, received_at)
        except Exception as error:  # noqa: BLE001 - the batch reappears after its visibility timeout
            LOG.info(
                "ESM %s: batch of %d not processed: %s", self.worker.uuid, len(messages), error
            )
        finally:
            self._release_slot()

    def _handle_with_throttle_retries(
        self, messages: list[dict[str, Any]], received_at: float
    ) -> None:
        pause = THROTTLE_BACKOFF[0]
        deadline = received_at + self.visibility_timeout
        while True:
            try:
                self.poller.handle_messages(messages)
                return
            except Exception as error:
                if not is_throttle(error) or self.stop.is_set():
                    raise
                self.limit.throttled()  # AWS backs off by allocating fewer concurrent batches
                if time.monotonic() + pause >= deadline:
                    raise  # give up: the messages become visible again, as on AWS
                self.stop.wait(pause)
                pause = min(pause * 2, THROTTLE_BACKOFF[1])


def is_throttle(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TooManyRequestsException):
            return True
        if isinstance(current, ClientError):
            if current.response.get("Error", {}).get("Code") == "TooManyRequestsException":
                return True
        current = current.__cause__ or current.__context__
    return False


def _poller_loop(fn, self: EsmWorker, *args: Any, **kwargs: Any) -> None:
    if isinstance(self.poller, SqsPoller):
        self.poller._lab_worker = self
    return fn(self, *args, **kwargs)


def _poll_events(fn, self: SqsPoller) -> None:
    worker = getattr(self, "_lab_worker", None)
    if worker is None:  # EventBridge Pipes and anything else: LocalStack's poller
        return fn(self)
    Dispatcher(worker, self).run()


def patches() -> Patches:
    lambda_service.capture()
    p = Patches()
    p.function(EsmWorker.poller_loop, _poller_loop)
    p.function(SqsPoller.poll_events, _poll_events)
    return p
