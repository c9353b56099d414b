"""PID-file supervision: a stopped or exited process is never reported alive."""

from __future__ import annotations

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
