"""Fork server and execution environment for one Lambda function version (stdlib only).

Run by the function's own interpreter (e.g. python3.13) in isolated mode:

    python3.13 -I -S zygote.py --code DIR --runtime-lib DIR --control-fd N [--preload a,b]

The zygote puts the function's code first on `sys.path` (like /var/task on AWS), then the
runtime-provided libraries (boto3, like /var/runtime), imports the heavy modules the function is
likely to import, and then waits on its control socket. Each `spawn` request carries a socket (by
SCM_RIGHTS) and the environment variables of one execution environment; the zygote forks, and the
child imports the handler module (the function's init phase) and serves invocations on that socket.

Forking a process that already imported boto3 answers in a few milliseconds, where a fresh
interpreter importing boto3 takes 250-300 ms on this machine's kind; children share the zygote's
pages copy-on-write, so an environment costs about 1 MB of unique memory.

Wire format (both directions): 4-byte big-endian length, then a UTF-8 JSON object.
LocalStack's side imports `send_frame` / `recv_frame` from this module.
"""

from __future__ import annotations

import array
import ctypes
import gc
import importlib
import io
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback

_HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


# ---------------------------------------------------------------------------- framing
def send_frame(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    packet = _HEADER.pack(len(data)) + data
    if fds:
        sock.sendmsg([packet], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(packet)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise EOFError("peer closed the socket")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> dict:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    return json.loads(_recv_exact(sock, size))


def recv_frame_with_fd(sock: socket.socket) -> tuple[dict, int | None]:
    """Receive one frame whose first bytes may carry a file descriptor."""
    fds = array.array("i")
    header, ancdata, _flags, _addr = sock.recvmsg(
        _HEADER.size, socket.CMSG_LEN(fds.itemsize)
    )
    if not header:
        raise EOFError("peer closed the socket")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if len(header) < _HEADER.size:
        header += _recv_exact(sock, _HEADER.size - len(header))
    (size,) = _HEADER.unpack(header)
    return json.loads(_recv_exact(sock, size)), (fds[0] if fds else None)


# ---------------------------------------------------------------------------- child: logs
class _FrameLog(io.TextIOBase):
    """stdout/stderr of an environment: every write goes to LocalStack as a `log` frame.

    Streaming (not buffering until the result) keeps the lines printed before a timeout or a
    crash, as CloudWatch Logs shows them on AWS.
    """

    def __init__(self, channel: "_Channel") -> None:
        self._channel = channel

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self._channel.send({"t": "log", "d": text})
        return len(text)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:  # some libraries probe it; there is no OS-level descriptor
        raise io.UnsupportedOperation("fileno")


class _Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, message: dict) -> None:
        with self.lock:
            try:
                send_frame(self.sock, message)
            except OSError:
                # LocalStack went away or stopped this environment: nothing left to serve.
                os._exit(0)


# ---------------------------------------------------------------------------- child: context
class LambdaContext:
    """The context object AWS passes to Python handlers (same attribute names)."""

    def __init__(self, request_id: str, arn: str, deadline_ms: int, env: dict) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error_payload(error: BaseException, error_type: str | None = None) -> dict:
    # The function's frames only, as on AWS: not this runtime's own.
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename != __file__]
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "requestId": "",
        "stackTrace": [line for line in traceback.format_list(frames)],
    }


def _log_error(payload: dict) -> None:
    # The AWS Python runtime prints a failed invocation as one [ERROR] record.
    trace = "".join(payload.get("stackTrace") or [])
    print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}\n"
          f"Traceback (most recent call last):\n{trace}", end="", file=sys.stderr)


def _load_handler(handler: str):
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - reported to the caller as AWS does
        raise _InitError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_name}': {error}",
            error,
        ) from error
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        ) from None


class _InitError(Exception):
    def __init__(self, error_type: str, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.cause = cause

    def payload(self) -> dict:
        payload = _error_payload(self.cause or self, self.error_type)
        payload["errorMessage"] = str(self)
        return payload


def _set_parent_death_signal() -> None:
    """Die with the zygote (Linux prctl PR_SET_PDEATHSIG): no orphaned environments."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_environment(sock: socket.socket, env: dict, code_dir: str) -> None:
    """Body of a forked child: init (import the handler), then serve invocations until EOF."""
    channel = _Channel(sock)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(code_dir)
    import tempfile

    tempfile.tempdir = None  # re-read TMPDIR: the zygote may have cached its own
    sys.stdout = _FrameLog(channel)
    sys.stderr = _FrameLog(channel)
    _configure_root_logging()

    began = time.perf_counter()
    handler = init_error = None
    try:
        handler = _load_handler(env.get("_HANDLER", ""))
    except _InitError as error:
        init_error = error.payload()
        _log_error(init_error)
    except BaseException as error:  # noqa: BLE001 - SystemExit in init: AWS reports it too
        init_error = _error_payload(error, "Runtime.ExitError")
        _log_error(init_error)
    init_ms = (time.perf_counter() - began) * 1000
    channel.send({"t": "ready", "init_ms": init_ms, "pid": os.getpid()})

    while True:
        try:
            request = recv_frame(sock)
        except (EOFError, OSError):
            os._exit(0)
        if request.get("t") != "invoke":
            continue
        request_id = request["id"]
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace") or ""
        _RequestIdFilter.request_id = request_id
        if init_error is not None:
            channel.send({"t": "result", "ok": False, "payload": json.dumps(init_error)})
            continue
        context = LambdaContext(request_id, request["arn"], request["deadline_ms"], os.environ)
        try:
            event = json.loads(request["payload"]) if request["payload"] else {}
            result = handler(event, context)
        except Exception as error:  # noqa: BLE001 - a function error, reported as AWS does
            payload = _error_payload(error)
            payload["requestId"] = request_id
            _log_error(payload)
            channel.send({"t": "result", "ok": False, "payload": json.dumps(payload)})
            continue
        try:
            body = json.dumps(result)
        except (TypeError, ValueError) as error:
            payload = {"errorMessage": f"Unable to marshal response: {error}",
                       "errorType": "Runtime.MarshalError", "requestId": request_id,
                       "stackTrace": []}
            _log_error(payload)
            channel.send({"t": "result", "ok": False, "payload": json.dumps(payload)})
            continue
        channel.send({"t": "result", "ok": True, "payload": body})


class _RequestIdFilter:
    request_id = ""

    @classmethod
    def filter(cls, record) -> bool:
        record.aws_request_id = cls.request_id
        return True


def _configure_root_logging() -> None:
    """The AWS Python runtime's root handler: `[LEVEL] time request_id message` on stdout."""
    import logging

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
        "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(_RequestIdFilter)
    root = logging.getLogger()
    root.handlers[:] = [handler]


# ---------------------------------------------------------------------------- zygote
def _preload(modules: list[str]) -> list[str]:
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception:  # noqa: BLE001 - a module the function does not ship: skip it
            pass
    return loaded


# Services whose botocore models the zygote parses once for every environment.
WARM_SERVICES = ("sqs", "events", "ssm", "secretsmanager", "dynamodb", "lambda", "logs",
                 "cloudwatch", "sts", "s3", "apigateway")


def _share_botocore_loader() -> bool:
    """Parse botocore's JSON data once in the zygote and share it with every session.

    botocore gives each new Session its own Loader, so every environment (and every
    `boto3.session.Session()` Powertools creates) re-parses endpoints and service models:
    about 70 ms per client on this machine's kind. The data is read-only, so one warmed
    Loader serves all sessions; a session with a custom AWS_DATA_PATH keeps its own.
    """
    try:
        import botocore.loaders
        import botocore.session
    except ImportError:
        return False
    loader = botocore.loaders.create_loader()
    for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
        try:
            loader.load_data(name)
        except Exception:  # noqa: BLE001 - older botocore lacks some files
            pass
    for service in WARM_SERVICES:
        for kind in ("service-2", "endpoint-rule-set-1"):
            try:
                loader.load_service_model(service, kind)
            except Exception:  # noqa: BLE001
                pass
    def _register_data_loader(self) -> None:
        def data_loader():
            # resolved when first used, once the session's config store exists
            data_path = self.get_config_variable("data_path")
            return botocore.loaders.create_loader(data_path) if data_path else loader

        self._components.lazy_register_component("data_loader", data_loader)

    botocore.session.Session._register_data_loader = _register_data_loader
    _warm_client_creation()
    return True


def _warm_client_creation() -> None:
    """Create (and drop) one client per warm service, so its one-time work is shared.

    botocore imports modules and fills module-level caches the first time a client is made;
    done here, every environment shares them instead of paying about 2 MB of its own memory per
    client kind (measured: two clients 7.9 -> 4.4 MB per environment). No request is sent: the
    credentials, region and endpoint are given, and the clients are dropped unused.
    """
    try:
        import boto3.session
    except ImportError:
        return
    session = boto3.session.Session(aws_access_key_id="warm", aws_secret_access_key="warm",
                                    region_name="us-east-1")
    for service in WARM_SERVICES:
        try:
            session.client(service, endpoint_url="http://127.0.0.1:9")
        except Exception:  # noqa: BLE001 - a service this botocore lacks
            pass


# CPython 3.12 and 3.13 (64-bit, with the GIL) skip every reference-count write on an object whose
# count is UINT32_MAX (PEP 683's immortal objects): Py_INCREF's add wraps to 0 and returns.
_IMMORTAL_REFCOUNT = 0xFFFFFFFF


def _immortalize_heap() -> int:
    """Make the zygote's objects immortal, so children reading them do not copy their pages.

    A forked child shares the zygote's pages until it writes to one; CPython writes an object's
    reference count every time it is used, so reading a module's functions copies the pages they
    live on. PEP 683 names this very case (a pre-fork server) as its motive; CPython offers no
    call for it, so the counts are set here. Only objects alive in the zygote before any fork
    are touched; they stay alive in every environment anyway (modules, their functions and data).
    Returns how many objects were made immortal, 0 where the interpreter has no immortal objects.
    """
    if not ((3, 12) <= sys.version_info[:2] <= (3, 13)) or sys.maxsize < 2**32:
        return 0
    if getattr(sys, "_is_gil_enabled", lambda: True)() is False:
        return 0  # the free-threaded build keeps its counts elsewhere
    count = 0
    # Every object the collector tracks, and what they refer to (strings, numbers, bytes are
    # untracked). No bookkeeping set: it would be tracked, made immortal, and never freed.
    for container in gc.get_objects():
        for obj in (container, *gc.get_referents(container)):
            cell = ctypes.c_ssize_t.from_address(id(obj))
            if cell.value < _IMMORTAL_REFCOUNT:
                cell.value = _IMMORTAL_REFCOUNT
                count += 1
    return count


def _exit_status(exits: dict[int, int], pid: int, reap) -> int | None:
    """The wait status of child `pid`; it closed its socket while exiting, so its SIGCHLD may be
    a few milliseconds behind: wait up to 0.5 s for it. None: still running, or not a child."""
    deadline = time.monotonic() + 0.5
    while pid not in exits and time.monotonic() < deadline:
        reap()
        if pid not in exits:
            time.sleep(0.005)
    return exits.pop(pid, None)


def serve(control: socket.socket, code_dir: str, keep_frozen: bool) -> None:
    """Fork one environment per spawn request; `keep_frozen`: children leave the zygote's objects
    frozen (out of the collector's reach), so a collection does not copy their pages."""
    # Children are reaped here, their wait status kept a while: when an environment dies in an
    # invocation, LocalStack's side asks how (AWS reports "exit status 1", "signal: killed").
    # Each child restores SIGCHLD for its own subprocesses.
    exits: dict[int, int] = {}

    def reap(_signum: int = 0, _frame: object = None) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            exits[pid] = status
            if len(exits) > 4096:
                exits.pop(next(iter(exits)))

    signal.signal(signal.SIGCHLD, reap)
    while True:
        try:
            request, fd = recv_frame_with_fd(control)
        except (EOFError, OSError):
            # LocalStack is gone (even by SIGKILL): take every environment down with us.
            os.killpg(0, signal.SIGKILL)
            return
        if request.get("op") == "exit_status":
            send_frame(control, {"status": _exit_status(exits, int(request.get("pid", 0)), reap)})
            continue
        if request.get("op") != "spawn" or fd is None:
            send_frame(control, {"error": f"bad request {request.get('op')!r}"})
            continue
        pid = os.fork()
        if pid == 0:
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _set_parent_death_signal()
                if not keep_frozen:
                    gc.unfreeze()
                run_environment(socket.socket(fileno=fd), request["env"], code_dir)
            except BaseException:  # noqa: BLE001 - never fall back into the zygote loop
                traceback.print_exc(file=sys.__stderr__)
            finally:
                os._exit(1)
        os.close(fd)
        send_frame(control, {"pid": pid})


def main(argv: list[str]) -> None:
    args = dict(zip(argv[1::2], argv[2::2]))
    code_dir = args["--code"]
    runtime_lib = args.get("--runtime-lib", "")
    # AWS order: the function's code, then the runtime's own libraries (boto3), then stdlib.
    sys.path[:0] = [code_dir] + ([runtime_lib] if runtime_lib else [])
    os.chdir(code_dir)
    control = socket.socket(fileno=int(args["--control-fd"]))
    loaded = _preload([m for m in args.get("--preload", "").split(",") if m])
    if args.get("--share-botocore-loader", "1") == "1" and _share_botocore_loader():
        loaded.append("botocore-data")
    # Move everything imported so far out of the collector's reach, so children do not
    # touch (and copy) those pages when they collect garbage.
    gc.collect()
    mode = args.get("--share-pages", "immortal")
    # before the freeze: gc.get_objects() does not list the frozen generation
    immortal = _immortalize_heap() if mode == "immortal" else 0
    gc.freeze()
    send_frame(control, {"ready": True, "pid": os.getpid(), "preloaded": loaded,
                         "immortal": immortal, "threads": threading.active_count()})
    serve(control, code_dir, keep_frozen=mode in ("frozen", "immortal"))


if __name__ == "__main__":
    main(sys.argv)
