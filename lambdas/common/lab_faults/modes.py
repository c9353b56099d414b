"""What each fault mode does to one invocation.

Kept apart from the decorator so each effect can be tested on its own. Every function here is an
injected fault: callers log and count it before calling.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any


class InjectedFault(Exception):
    """Raised by the `exception` mode; its name tells an injected failure from a real one."""


class DenylistedConnection(ConnectionRefusedError):
    """Raised instead of connecting to a denylisted host (the `denylist` mode)."""


def sleep_latency(min_ms: float, max_ms: float, rng: random.Random) -> float:
    delay_ms = rng.uniform(min_ms, max_ms)
    time.sleep(delay_ms / 1000)
    return delay_ms


def sleep_past_timeout(context: Any) -> None:
    """Sleep until the platform's deadline has passed so the invocation really times out."""
    remaining_ms = 900_000
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining_ms = context.get_remaining_time_in_millis()
    time.sleep(remaining_ms / 1000 + 1.0)


def crash(how: str) -> None:
    """End this execution environment's process now, mid-invocation.

    `kill` is what the kernel does to a function out of memory (SIGKILL: nothing runs after it);
    `exit` is a runtime that exits on its own (status 1). Either way the platform reports
    `Runtime.ExitError` for the invocation and starts a fresh environment for the next one.
    Output is flushed first, so the log line that announced the crash is kept.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(1)


def status_code_response(status_code: int, body: Any) -> dict[str, Any]:
    """An API Gateway proxy response: what an API caller of a failing function would see."""
    return {
        "statusCode": status_code,
        "headers": {"Content-Type": "application/json", "X-Lab-Fault": "status_code"},
        "body": body if isinstance(body, str) else json.dumps(body),
    }


@contextlib.contextmanager
def disk_filled(mb: int) -> Iterator[str]:
    """Hold `mb` MB of /tmp for the invocation, like failure-lambda's dd into /tmp.

    The file is removed afterwards because lab functions are host processes sharing the host /tmp;
    on AWS /tmp is per environment. Written in 1 MB chunks so a full disk fails fast with ENOSPC.
    """
    fd, path = tempfile.mkstemp(prefix="lab-faults-disk-", dir=tempfile.gettempdir())
    try:
        chunk = b"\0" * (1024 * 1024)
        with os.fdopen(fd, "wb") as handle:
            for _ in range(mb):
                handle.write(chunk)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _host_port(address: Any) -> tuple[str, str]:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        port = str(address[1]) if len(address) > 1 else ""
        return host, port
    return str(address), ""


@contextlib.contextmanager
def denylisted(patterns: tuple[Any, ...]) -> Iterator[None]:
    """Refuse connections to hosts matching any pattern, in this process, for the invocation.

    Like failure-lambda, which patches Node's DNS lookup: we patch both `socket.getaddrinfo`
    (catches host names before they are resolved, e.g. `dynamodb.us-east-1.amazonaws.com`) and
    `socket.socket.connect`/`connect_ex` (catches literal addresses such as `127.0.0.1:4566`).
    Each pattern is searched in `host` and in `host:port`. The process executor runs one
    invocation per process at a time, so a process-wide patch affects only this invocation.
    """

    def blocked(host: str, port: str) -> bool:
        targets = (host, f"{host}:{port}") if port else (host,)
        return any(p.search(t) for p in patterns for t in targets)

    original_getaddrinfo = socket.getaddrinfo
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and blocked(str(host), "" if port is None else str(port)):
            raise DenylistedConnection(f"lab_faults denylist: connection to {host}:{port} blocked")
        return original_getaddrinfo(host, port, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        host, port = _host_port(address)
        if blocked(host, port):
            raise DenylistedConnection(f"lab_faults denylist: connection to {host}:{port} blocked")
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        host, port = _host_port(address)
        if blocked(host, port):
            raise DenylistedConnection(f"lab_faults denylist: connection to {host}:{port} blocked")
        return original_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.getaddrinfo = original_getaddrinfo  # type: ignore[assignment]
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]


def corrupt(response: Any, style: str, rng: random.Random) -> Any:
    """Corrupt a handler's response the way a faulty dependency or serializer would.

    An API proxy response keeps its status and headers and gets a broken `body` (a 200 with an
    unparseable body is the interesting case); any other response is corrupted as its JSON text.
    """
    if isinstance(response, dict) and isinstance(response.get("body"), str):
        corrupted = dict(response)
        corrupted["body"] = _corrupt_text(response["body"], style, rng)
        corrupted["headers"] = {**(response.get("headers") or {}), "X-Lab-Fault": "corruption"}
        return corrupted
    try:
        text = json.dumps(response)
    except (TypeError, ValueError):
        text = str(response)
    return _corrupt_text(text, style, rng)


def _corrupt_text(text: str, style: str, rng: random.Random) -> str:
    if style == "empty":
        return ""
    if style == "truncate":
        return text[: len(text) // 2]
    # garble: replace about a quarter of the characters (at least one) with noise
    chars = list(text) or [" "]
    for _ in range(max(1, len(chars) // 4)):
        chars[rng.randrange(len(chars))] = rng.choice("#%&~\x00\ufffd")
    return "".join(chars)
