"""Faults under load, the pure parts: which processes are execution environments (real processes
shaped like the executor's), the killer, the pass rule, and the argument checks."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab_platform.executor.environments import environments
from resilience.lab import LabError
from resilience.under_load import FAULTS, EnvironmentKiller, FaultRun, check_args, table

# A stand-in zygote: the executor's script path, forks `children` environments and waits.
ZYGOTE_STANDIN = """
import os, sys, time
children = int(sys.argv[1])
for _ in range(children):
    if os.fork() == 0:
        time.sleep(60)
        os._exit(0)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def zygotes(tmp_path: Path):
    script = tmp_path / "lab_platform" / "executor" / "zygote.py"
    script.parent.mkdir(parents=True)
    script.write_text(ZYGOTE_STANDIN)
    started: list[subprocess.Popen] = []

    def start(function: str, children: int) -> subprocess.Popen:
        env = {"PATH": os.environ["PATH"], "AWS_LAMBDA_FUNCTION_NAME": function}
        process = subprocess.Popen([sys.executable, str(script), str(children)], env=env,
                                   stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert process.stdout.readline().strip() == "ready"
        started.append(process)
        return process

    yield start
    for process in started:
        os.killpg(process.pid, 9)
        process.wait()


def test_environments_are_a_zygotes_children_of_the_named_function(zygotes) -> None:
    delivery = zygotes("DeliveryFunction", 3)
    zygotes("SlowApiFunction", 2)
    found = environments("DeliveryFunction", under=os.getpid())
    assert len(found) == 3
    assert delivery.pid not in {e.pid for e in found}  # the zygote itself is no environment
    assert {e.function for e in found} == {"DeliveryFunction"}
    assert len(environments("SlowApiFunction", under=os.getpid())) == 2


def test_environments_under_another_root_are_left_alone(zygotes) -> None:
    first = zygotes("DeliveryFunction", 2)
    zygotes("DeliveryFunction", 1)
    assert len(environments("DeliveryFunction", under=first.pid)) == 2


def test_the_killer_kills_environments_of_its_function_only(zygotes) -> None:
    first = zygotes("DeliveryFunction", 3)
    other = zygotes("SlowApiFunction", 2)
    killer = EnvironmentKiller({"t": first.pid}, {"t": "DeliveryFunction"}, every=0.05)
    killer.start()
    deadline = time.monotonic() + 10
    while environments("DeliveryFunction", under=first.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = killer.stop()
    assert killed["t"] >= 3
    assert environments("DeliveryFunction", under=first.pid) == []
    assert len(environments("SlowApiFunction", under=other.pid)) == 2


def _run(ledger: dict[str, int], effect: bool = True, decidable: bool = True) -> FaultRun:
    run = FaultRun(FAULTS["crash"])
    run.ledgers["no-flow-control"] = ledger
    run.decidable["no-flow-control"] = decidable
    run.took_effect["no-flow-control"] = effect
    run.effect["no-flow-control"] = "12 crash faults injected"
    return run


def test_a_fault_passes_only_with_nothing_lost_and_the_fault_applied() -> None:
    ok = {"delivered": 90, "dead_lettered": 8, "in_flight": 2, "lost": 0}
    assert _run(ok).passed
    assert not _run({**ok, "lost": 1}).passed
    assert not _run(ok, effect=False).passed  # a fault that never applied proves nothing
    assert not _run(ok, decidable=False).passed
    assert not _run({"delivered": 0, "dead_lettered": 0, "in_flight": 0, "lost": 0}).passed  # no orders
    assert not FaultRun(FAULTS["crash"]).passed  # no ledger at all
    assert not FaultRun(FAULTS["crash"], error="the load did not run").passed
    shown = table([_run(ok), FaultRun(FAULTS["sigkill"], error="boom")])
    assert "| crash | no-flow-control | 100 | 90 | 8 | 2 | 0 | 0 | 12 crash faults injected | PASS |" in shown
    assert "FAIL: boom" in shown


def test_bad_arguments_get_one_line(tmp_path: Path) -> None:
    profiles = tmp_path / "p.toml"
    profiles.write_text('[profiles.short]\ndescription = "x"\nphases = [{ name = "a", duration = 80, rate = 2 }]\n'
                        '[profiles.tiny]\ndescription = "x"\nphases = [{ name = "a", duration = 50, rate = 2 }]\n')

    def args(**kw) -> argparse.Namespace:
        base = {"faults": "crash", "profile": "short", "profiles_file": profiles, "start": 10.0}
        return argparse.Namespace(**{**base, **kw})

    assert [f.name for f in check_args(args(faults="kill-switch,courier-down"))] == ["kill-switch", "courier-down"]
    with pytest.raises(LabError, match="unknown fault.*nope.*choose from"):
        check_args(args(faults="crash,nope"))
    with pytest.raises(LabError, match="must end inside the 50 s profile 'tiny': it is too short for a 60 s fault"):
        check_args(args(profile="tiny"))
    with pytest.raises(LabError, match="use --start 50 or less"):
        check_args(args(faults="kill-switch", start=55.0))
    with pytest.raises(LabError, match="unknown profile"):
        check_args(args(profile="missing"))
