"""Where LocalStack's CPU goes: CPU seconds per AWS service and per kind of background thread.

Not an AWS behaviour but the lab's own instrument (issue #15): the lab is faithful only while the
emulator is not a second boundary, and to keep it so one must know which service costs what per
order. A profiler cannot say it under load (py-spy fell far behind at the smoke peak); this
accounting can, at about 2 microseconds per request.

- Every request LocalStack serves, from outside or from its in-memory client (API Gateway invoking
  Lambda, Lambda's telemetry calling CloudWatch), runs through rolo's `HandlerChain.handle`. Each
  handling is charged the thread's CPU time (`time.thread_time`) it used itself, nested handlings
  excluded, to its service: the AWS service the request was parsed as, `execute-api` for API
  Gateway's user requests, `lab` for `/_lab/*`, `localstack` for `/_localstack/*`.
- Every thread's CPU outside request handling is charged to its kind, the thread's name without
  its counters (`asgi_gw_3` -> `asgi_gw`): threads that ended at their end, live threads when read.
- `unattributed` is the process's CPU (user + system) minus both: threads that were running before
  the accounting started, and the C threads Python does not know.

`GET /_lab/cpu` answers the figures as JSON. `LAB_PATCH_CPU_ACCOUNTING=0` switches it off.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass

from localstack.utils.patch import Patch, Patches

PATH = "/_lab/cpu"
EXECUTE_API_PATH = "/_aws/execute-api"

_lock = threading.Lock()
_service_cpu: Counter[str] = Counter()
_service_requests: Counter[str] = Counter()
# finished threads' CPU outside request handling, by kind
_thread_cpu: Counter[str] = Counter()
# live threads: CPU already charged to services, so the thread's own share is the rest
_charged_by_thread: dict[int, float] = {}
_local = threading.local()
_rules: list = []


@dataclass
class _Frame:
    context: object
    resumed: float
    own: float = 0.0


def service_of(context) -> str:
    """The bucket a request's CPU goes to, from what the handler chain learned of it."""
    service = getattr(context, "service", None)
    if service is not None:
        return service.service_name
    request = getattr(context, "request", None)
    path = getattr(request, "path", "") or ""
    host = getattr(request, "host", "") or ""
    if path.startswith(EXECUTE_API_PATH) or ".execute-api." in host:
        return "execute-api"
    if path.startswith("/_lab/"):
        return "lab"
    if path.startswith("/_localstack"):
        return "localstack"
    # API Gateway's own handler chain for a user request carries an invocation context
    if type(context).__name__.endswith("InvocationContext"):
        return "execute-api"
    return "other"


def thread_kind(name: str) -> str:
    """`asgi_gw_12` -> `asgi_gw`, `Thread-7 (run)` -> `Thread (run)`: a thread's name without counters."""
    return re.sub(r"[-_ ]?\d+", "", name).strip() or "unnamed"


def _stack() -> list[_Frame]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _enter(context) -> _Frame:
    now = time.thread_time()
    stack = _stack()
    if stack:
        stack[-1].own += now - stack[-1].resumed
    frame = _Frame(context, resumed=now)
    stack.append(frame)
    return frame


def _leave(frame: _Frame) -> None:
    now = time.thread_time()
    frame.own += now - frame.resumed
    stack = _stack()
    stack.pop()
    service = service_of(frame.context)
    parent_service = None
    if stack:
        stack[-1].resumed = now
        parent_service = service_of(stack[-1].context)
    ident = threading.get_ident()
    with _lock:
        _service_cpu[service] += frame.own
        # API Gateway's inner chain is the same request as its outer one: count it once
        if service != parent_service:
            _service_requests[service] += 1
        _charged_by_thread[ident] = _charged_by_thread.get(ident, 0.0) + frame.own


def _chain_handle_accounted() -> Patch:
    from rolo.gateway.chain import HandlerChain

    original = HandlerChain.handle

    def handle(self, context, response):
        frame = _enter(context)
        try:
            return original(self, context, response)
        finally:
            _leave(frame)

    return Patch(HandlerChain, "handle", handle)


def _threads_accounted() -> Patch:
    original = threading.Thread._bootstrap_inner

    def bootstrap_inner(self):
        try:
            original(self)
        finally:
            ident = threading.get_ident()
            own = time.thread_time()
            with _lock:
                own -= _charged_by_thread.pop(ident, 0.0)
                _thread_cpu[thread_kind(self.name)] += max(own, 0.0)

    return Patch(threading.Thread, "_bootstrap_inner", bootstrap_inner)


def _thread_cpu_now(thread: threading.Thread) -> float | None:
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (OSError, TypeError):  # ended meanwhile, or not started
        return None


def snapshot() -> dict:
    """CPU seconds so far: the process, each service, each kind of thread, and what is left."""
    times = os.times()
    live: Counter[str] = Counter()
    with _lock:
        services = dict(_service_cpu)
        requests = dict(_service_requests)
        threads = Counter(_thread_cpu)
        charged = dict(_charged_by_thread)
    for thread in threading.enumerate():
        cpu = _thread_cpu_now(thread)
        if cpu is not None:
            live[thread_kind(thread.name)] += max(cpu - charged.get(thread.ident, 0.0), 0.0)
    threads.update(live)
    process = times.user + times.system
    attributed = sum(services.values()) + sum(threads.values())
    return {
        "process": {"user": times.user, "system": times.system},
        "services": services,
        "requests": requests,
        "threads": dict(threads),
        "unattributed": max(process - attributed, 0.0),
    }


def serve(request, **_: str):
    from localstack.http import Response

    return Response(json.dumps(snapshot()), status=200, mimetype="application/json")


def register_route() -> None:
    from localstack.services.edge import ROUTER

    if not _rules:
        _rules.append(ROUTER.add(PATH, endpoint=serve, methods=["GET"]))


def patches() -> Patches:
    register_route()
    return Patches([_chain_handle_accounted(), _threads_accounted()])
