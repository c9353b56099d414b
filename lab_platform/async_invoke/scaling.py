"""Async event pollers that scale out to the concurrency limit, with AWS's throttle retries.

AWS: events queued for a function are picked up concurrently until the function's reserved
concurrency or the account's unreserved concurrency is used up; an invocation above it is
throttled, counted as a Throttle, and the event is put back and retried with a delay growing
exponentially from 1 s to at most 5 min, for up to the maximum event age (6 h by default).
Throttles do not count against MaximumRetryAttempts.
LocalStack 4.14 (`event_manager.Poller`):
- runs events on `ThreadPoolExecutor()` of the default size min(32, cores + 4) (6 on 2 cores),
  so no function runs more than 6 async invocations at once whatever the limit;
- receives up to 10 events per call regardless of free workers, so events wait in the pool's
  local queue while their visibility timeout runs (its own comment: double executions);
- never increments `exception_retries`, so every throttle retry waits 1 s;
- judges a throttled event's age by the function-error retry's look-ahead (`has_enough_time_for_retry`:
  age + 60 s x (retries + 1) <= MaximumEventAgeInSeconds), so with a maximum age of 60 s an event
  went to the on-failure destination at its first throttle instead of being retried for 60 s.
Here: each poller gets a pool sized to the account limit plus a headroom (so invocations above
the limit are attempted and throttled as on AWS), receives only as many events as it has free
workers, and throttle retries back off 1, 2, 4 ... 300 s; a throttled (or system-errored) event is
kept until it is older than its maximum age, the last retry waiting only the time it has left
(`retry_delay_within_age`). Function errors keep LocalStack's look-ahead.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from datetime import datetime

from localstack import config
from localstack.aws.api.lambda_ import TooManyRequestsException
from localstack.services.lambda_.analytics import FunctionStatus
from localstack.services.lambda_.invocation import event_manager
from localstack.services.lambda_.invocation.event_manager import (
    CLIENT_CONFIG,
    Poller,
    SQSInvocation,
    get_sqs_client,
)
from localstack.utils.patch import Patches

from lab_platform import account_limits, settings
from lab_platform.workers import ElasticPool

LOG = logging.getLogger(__name__)

MAX_RECEIVE = 10  # the internal queue hands out at most 10 events per call, like SQS
RECEIVE_WAIT_SECONDS = 2
MAX_THROTTLE_RETRY_DELAY = 300  # AWS: "to a maximum of 5 minutes"
DEFAULT_MAX_EVENT_AGE_SECONDS = 6 * 3600  # AWS: "for up to 6 hours by default"


def pool_size(account_limit: int, environ: dict[str, str] | None = None) -> int:
    """Workers per function: the account limit plus a headroom that makes throttles observable."""
    headroom = settings.number("LAB_ASYNC_HEADROOM", max(10.0, account_limit * 0.1), environ)
    return max(1, int(account_limit + headroom))


def throttle_retry_delay(exception_retries: int) -> int:
    """1, 2, 4, ... seconds, capped at 5 minutes (AWS async throttle/system-error retries)."""
    return min(2 ** max(0, exception_retries), MAX_THROTTLE_RETRY_DELAY)


def retry_delay_within_age(exception_retries: int, age_s: float, max_age_s: float) -> int | None:
    """Seconds before a throttled event's next attempt, or None once it is older than its maximum
    age (it then goes to the on-failure destination); the last wait is only what is left."""
    left = max_age_s - age_s
    if left <= 0:
        return None
    return max(1, min(throttle_retry_delay(exception_retries), math.ceil(left)))


def _event_age(sqs_invocation: SQSInvocation, event_invoke_config) -> tuple[float, float]:
    """(the event's age, its maximum age) in seconds; LocalStack stamps invoke_time with now()."""
    configured = getattr(event_invoke_config, "maximum_event_age_in_seconds", None)
    age = (datetime.now() - sqs_invocation.invocation.invoke_time).total_seconds()
    return age, float(DEFAULT_MAX_EVENT_AGE_SECONDS if configured is None else configured)


def _has_enough_time_for_retry(fn, sqs_invocation: SQSInvocation, event_invoke_config) -> bool:
    # Asked inside handle_message's `except` (the invoke raised: a throttle or a system error) and
    # after a function error; only the first has an exception being handled.
    if sys.exc_info()[1] is None:
        return fn(sqs_invocation, event_invoke_config)
    age, max_age = _event_age(sqs_invocation, event_invoke_config)
    return retry_delay_within_age(sqs_invocation.exception_retries, age, max_age) is not None


def _init(fn, self: Poller, version_manager, event_queue_url) -> None:
    fn(self, version_manager, event_queue_url)
    function_id = version_manager.function_version.id
    # the function's own account's limit (LAB_ACCOUNT_CONCURRENCY_BY_ACCOUNT), not the process's
    size = pool_size(account_limits.account_limit(function_id.account, config.LAMBDA_LIMITS_CONCURRENT_EXECUTIONS))
    self.invoker_pool.shutdown(wait=False)  # the default-sized pool never ran anything
    # not a ThreadPoolExecutor: LocalStack's patch of it walks every thread on each submit
    self.invoker_pool = ElasticPool(
        size, name=f"lab-async-{function_id.function_name}:{function_id.qualifier}"
    )
    self._lab_slots = threading.BoundedSemaphore(size)


def _run(self: Poller, *args, **kwargs) -> None:
    sqs_client = get_sqs_client(self.version_manager.function_version, client_config=CLIENT_CONFIG)
    slots: threading.BoundedSemaphore = self._lab_slots
    while not self._shutdown_event.is_set():
        # Take a free worker before receiving: an event is only made invisible when it can start.
        if not slots.acquire(timeout=1):
            continue
        free = 1
        while free < MAX_RECEIVE and slots.acquire(blocking=False):
            free += 1
        try:
            function_timeout = self.version_manager.function_version.config.timeout
            response = sqs_client.receive_message(
                QueueUrl=self.event_queue_url,
                WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
                MaxNumberOfMessages=free,
                VisibilityTimeout=function_timeout + 60,
            )
            messages = response.get("Messages") or []
        except Exception as error:  # noqa: BLE001 - queue deleted at shutdown, etc.
            messages = []
            if not self._shutdown_event.is_set():
                LOG.error("async poller %s: %s", self.event_queue_url, error)
                self._shutdown_event.wait(1)
        for _ in range(free - len(messages)):
            slots.release()
        for message in messages:
            if self._shutdown_event.is_set():
                slots.release()
                continue
            try:
                self.invoker_pool.submit(_handle_and_release, self, message, slots)
            except RuntimeError:  # pool shut down concurrently
                slots.release()


def _handle_and_release(self: Poller, message: dict, slots: threading.BoundedSemaphore) -> None:
    try:
        self.handle_message(message)
    finally:
        slots.release()


def _process_throttles_and_system_errors(
    self: Poller, sqs_invocation: SQSInvocation, error: Exception
) -> str:
    if isinstance(error, TooManyRequestsException):
        status = FunctionStatus.throttle_error
    else:
        LOG.debug(
            "system error in async invoke of %s: %s", self.version_manager.function_arn, error
        )
        status = FunctionStatus.system_error
    qualifier = self.version_manager.function_version.id.qualifier
    age, max_age = _event_age(sqs_invocation, self.version_manager.function.event_invoke_configs.get(qualifier))
    # handle_message asked _has_enough_time_for_retry first: the event has time left
    delay = retry_delay_within_age(sqs_invocation.exception_retries, age, max_age) or 1
    sqs_invocation.exception_retries += 1  # LocalStack 4.14 forgets this: delay stays 1 s
    get_sqs_client(self.version_manager.function_version).send_message(
        QueueUrl=self.event_queue_url,
        MessageBody=sqs_invocation.encode(),
        DelaySeconds=delay,
    )
    return status


def patches() -> Patches:
    p = Patches()
    p.function(Poller.__init__, _init)
    p.function(Poller.run, _run, pass_target=False)
    p.function(event_manager.has_enough_time_for_retry, _has_enough_time_for_retry)
    p.function(
        Poller.process_throttles_and_system_errors,
        _process_throttles_and_system_errors,
        pass_target=False,
    )
    return p
