"""EventBridge -> Lambda targets queued in process instead of through an HTTP Invoke call.

AWS: EventBridge hands a matching event to Lambda's asynchronous queue; PutEvents throughput is
not tied to the target (the lab needs hundreds of events/s on one bus).
LocalStack 4.14: for every matching event, `LambdaTargetSender.send_event` makes a boto3
`Invoke(InvocationType=Event)` call through LocalStack's own HTTP gateway: about 17 ms of CPU per
event on this machine's kind, which capped a bus with a Lambda target at 131-145 events/s
accepted and 55-60/s run.
Here: the event goes straight to `LambdaService.invoke(..., InvocationType=Event)`, the same
call the Invoke API handler makes after parsing, i.e. the same enqueue, validation and
errors, without the HTTP round trip, serialisation and request parsing. Cross-account targets
(a `RoleArn` on the target) keep LocalStack's original path, which assumes that role.
Also: LocalStack starts a new thread per PutEvents entry to match it against the rules; here a
fixed pool of workers does it (same asynchrony, no thread start per event).
"""

from __future__ import annotations

import functools
import logging

from localstack.aws.api.lambda_ import InvocationType
from localstack.services.events import provider
from localstack.services.events.target import LambdaTargetSender
from localstack.services.events.utils import to_json_str
from localstack.services.lambda_.api_utils import function_locators_from_arn
from localstack.utils.patch import Patch, Patches
from localstack.utils.strings import long_uid, to_bytes
from localstack.utils.xray.trace_header import TraceHeader

from lab_platform import lambda_service
from lab_platform.workers import ElasticPool

LOG = logging.getLogger(__name__)


def _send_event(fn, self: LambdaTargetSender, event, trace_header) -> None:
    service = lambda_service.current()
    if self.target.get("RoleArn") or service is None:
        return fn(self, event, trace_header)

    name, qualifier, account, region = function_locators_from_arn(self.target["Arn"])
    if not isinstance(trace_header, TraceHeader):
        trace_header = TraceHeader().ensure_root_exists()
    service.invoke(
        function_name=name,
        qualifier=qualifier,
        region=region or self.target_region,
        account_id=account or self.target_account_id,
        invocation_type=InvocationType.Event,
        client_context=None,
        request_id=long_uid(),
        payload=to_bytes(to_json_str(event)),
        trace_context={"aws_trace_header": trace_header},
        user_agent="events.amazonaws.com",
    )
    return None


RULE_WORKERS = 8  # enough to keep up on 2 cores; matching is CPU-bound under the GIL anyway
_rule_pool: ElasticPool | None = None


def _start_worker_thread(fn, method, params=None, name: str | None = None):
    global _rule_pool
    if name != "events-process-rules":
        return fn(method, params, name=name)
    if _rule_pool is None:
        _rule_pool = ElasticPool(RULE_WORKERS, name="lab-events-rules")
    _rule_pool.submit(_run_logged, method, params)
    return None


def _run_logged(method, params) -> None:
    try:
        method(params)
    except Exception:  # noqa: BLE001 - as FuncThread: log, never kill the worker
        LOG.exception("processing EventBridge rules failed")


def patches() -> Patches:
    lambda_service.capture()
    p = Patches()
    p.function(LambdaTargetSender.send_event, _send_event)
    p.add(
        Patch(
            provider,
            "start_worker_thread",
            functools.partial(_start_worker_thread, provider.start_worker_thread),
        )
    )
    return p
