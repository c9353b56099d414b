"""lab_platform.workers.ElasticPool: grows only when no worker is idle, never past its maximum."""

from __future__ import annotations

import threading
import time

import pytest

from lab_platform.workers import ElasticPool


def test_sequential_tasks_reuse_one_worker():
    pool = ElasticPool(10, name="t")
    done = threading.Event()
    for i in range(20):
        finished = threading.Event()
        pool.submit(finished.set)
        assert finished.wait(2)
        time.sleep(0.01)  # let the worker go back to waiting
    pool.submit(done.set)
    assert done.wait(2)
    assert pool.size == 1
    pool.shutdown()


def test_concurrent_tasks_get_workers_up_to_the_maximum_then_queue():
    pool = ElasticPool(4, name="t")
    release = threading.Event()
    running = []
    lock = threading.Lock()
    peak = [0]

    def task() -> None:
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        release.wait(5)
        with lock:
            running.pop()

    for _ in range(10):
        pool.submit(task)
    time.sleep(0.3)
    assert pool.size == 4 and peak[0] == 4  # 6 tasks wait for a free worker
    release.set()
    deadline = time.monotonic() + 5
    while running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not running and pool.size == 4
    pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(task)


def test_a_failing_task_does_not_kill_its_worker():
    pool = ElasticPool(1, name="t")
    ok = threading.Event()
    pool.submit(lambda: 1 / 0)
    pool.submit(ok.set)
    assert ok.wait(2)
    pool.shutdown()

