"""PID-file supervision: a stopped or exited process is never reported alive."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from labctl import processes


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "PID_DIR", tmp_path / "pids")
    monkeypatch.setattr(processes, "LOG_DIR", tmp_path / "logs")


def test_start_records_the_process_and_stop_ends_it_even_unreaped():
    process = processes.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    assert process.alive and processes.find("sleeper").pid == process.pid
    assert processes.stop("sleeper") is True  # from the parent that started it: no reaping race
    assert not process.alive
    assert processes.find("sleeper") is None


def test_an_exited_child_is_not_alive_before_it_is_reaped():
    process = processes.start("quick", [sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while process.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process.alive  # a zombie until reaped, but not alive
    assert processes.stop("quick") is False


def test_starting_a_name_twice_is_refused():
    processes.start("twice", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(processes.ProcessError, match="already running"):
            processes.start("twice", [sys.executable, "-c", "pass"])
    finally:
        processes.stop("twice")


def test_an_adopted_process_is_stopped_by_down_and_refused_twice(tmp_path):
    # how `make load` records Locust: started by the load command in its own process group
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], process_group=0)
    try:
        processes.adopt("locust", child.pid, tmp_path / "report.html")
        assert processes.running("locust").pid == child.pid
        assert [p.name for p in processes.managed()] == ["locust"]
        with pytest.raises(processes.ProcessError, match="already running"):
            processes.adopt("locust", child.pid, tmp_path / "report.html")
        assert processes.stop("locust") is True
        assert child.wait(timeout=10) is not None and processes.running("locust") is None
    finally:
        child.kill()
        child.wait()


def test_forgetting_an_ended_process_leaves_nothing_to_stop(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"], process_group=0)
    processes.adopt("locust", child.pid, tmp_path / "report.html")
    child.wait()
    assert processes.running("locust") is None
    processes.forget("locust")
    assert processes.managed() == []


def test_stop_waits_for_the_whole_process_group(tmp_path):
    # a child that ignores SIGTERM outlives its leader for a while, as LocalStack's children can
    script = ("import signal, subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
              "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
              "time.sleep(60)\n")
    process = processes.start("family", [sys.executable, "-c", script])
    time.sleep(1.0)  # the child is up
    assert process.stop(timeout=1.0) is True
    processes.forget("family")
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nobody of the group is left
