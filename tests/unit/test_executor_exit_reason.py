"""How a runtime ended mid-invocation, in AWS's words (Runtime.ExitError's message)."""

from __future__ import annotations

import os
import signal

from lab_platform.executor.executor import exit_reason


def _status_of(child_body) -> int:
    pid = os.fork()
    if pid == 0:
        child_body()
        os._exit(0)
    return os.waitpid(pid, 0)[1]


def test_exit_status_and_signals_are_named_as_aws_names_them() -> None:
    assert exit_reason(_status_of(lambda: os._exit(1))) == "Runtime exited with error: exit status 1"
    assert exit_reason(_status_of(lambda: os.kill(os.getpid(), signal.SIGKILL))) == \
        "Runtime exited with error: signal: killed"
    assert exit_reason(_status_of(lambda: os.kill(os.getpid(), signal.SIGSEGV))) == \
        "Runtime exited with error: signal: segmentation fault"
    assert exit_reason(_status_of(lambda: os.kill(os.getpid(), signal.SIGUSR2))) == \
        f"Runtime exited with error: signal: signal {int(signal.SIGUSR2)}"
    # a clean exit mid-invocation, or a status nobody kept
    assert exit_reason(_status_of(lambda: None)) == "Runtime exited without providing a reason"
    assert exit_reason(None) == "Runtime exited without providing a reason"
