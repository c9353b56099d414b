"""A small elastic worker pool for the patches' hot paths.

`concurrent.futures.ThreadPoolExecutor` is patched by LocalStack (`runtime/patches.py`,
`patch_thread_pool`) to walk every thread of the pool on each `submit`; with the hundreds of
workers an async poller may need, that walk was 16 % of LocalStack's CPU at a few hundred
events/s. This pool starts a worker only when none is idle (up to `max_workers`), reuses idle
ones, and never walks its threads on submit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)

_STOP = object()


class ElasticPool:
    def __init__(self, max_workers: int, name: str) -> None:
        if max_workers < 1:
            raise ValueError(f"a pool needs at least one worker, got {max_workers}")
        self.max_workers = max_workers
        self.name = name
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers = 0
        self._idle = 0  # workers waiting for a task (or about to)
        self._pending = 0  # tasks queued, not yet taken
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on a worker; raises RuntimeError after `shutdown`, as an executor."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"pool {self.name} is shut down")
            self._tasks.put((fn, args))
            self._pending += 1
            if self._pending <= self._idle or self._workers >= self.max_workers:
                return  # an idle worker takes it, or it waits for the next free one
            self._workers += 1
            number = self._workers
        threading.Thread(target=self._work, name=f"{self.name}-{number}", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            task = self._tasks.get()
            with self._lock:
                self._idle -= 1
                if task is not _STOP:
                    self._pending -= 1
            if task is _STOP:
                return
            fn, args = task
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - a task's failure must not kill the worker
                LOG.exception("task failed in %s", self.name)

    def shutdown(self, wait: bool = False, cancel_futures: bool = False) -> None:
        """Stop taking tasks; workers end after their current task (queued tasks are dropped
        when `cancel_futures`, as ThreadPoolExecutor.shutdown)."""
        with self._lock:
            self._shutdown = True
            workers = self._workers
        if cancel_futures:
            while True:
                try:
                    self._tasks.get_nowait()
                except queue.Empty:
                    break
                with self._lock:
                    self._pending -= 1
        for _ in range(workers):
            self._tasks.put(_STOP)

    @property
    def size(self) -> int:
        return self._workers
