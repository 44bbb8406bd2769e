"""Run callables at a given time on a pool of background threads.

Async results, webhook retries and delays are all "do X at time T": one timer thread keeps them
in a heap and hands due jobs to worker threads, so a pending retry occupies no thread while it
waits and a submit answer never waits for any of them. Threads start on first use (nothing at
import or construction time) and are daemons: a stuck webhook receiver cannot block exit.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[], object]


class Scheduler:
    """A timer heap plus ``workers`` threads executing due jobs."""

    def __init__(self, workers: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._workers = workers
        self._clock = clock
        self._heap: list[tuple[float, int, Job]] = []
        self._order = itertools.count()  # ties keep submission order
        self._wakeup = threading.Condition()
        self._ready: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def now(self) -> float:
        return self._clock()

    def call_at(self, due: float, job: Job) -> None:
        """Run ``job`` on a worker thread once the clock reaches ``due``."""
        with self._wakeup:
            if self._closed:
                return
            self._start_locked()
            heapq.heappush(self._heap, (due, next(self._order), job))
            self._wakeup.notify()

    def call_later(self, delay_s: float, job: Job) -> None:
        self.call_at(self._clock() + max(0.0, delay_s), job)

    def close(self) -> None:
        """Drop pending jobs and stop the threads (running jobs finish on their own)."""
        with self._wakeup:
            self._closed = True
            self._heap.clear()
            self._wakeup.notify_all()
        for _ in self._threads:
            self._ready.put(None)

    def _start_locked(self) -> None:
        if self._threads:
            return
        timer = threading.Thread(target=self._timer_loop, name="sim-timer", daemon=True)
        self._threads.append(timer)
        for index in range(self._workers):
            worker = threading.Thread(
                target=self._work_loop, name=f"sim-worker-{index}", daemon=True
            )
            self._threads.append(worker)
        for thread in self._threads:
            thread.start()

    def _timer_loop(self) -> None:
        while True:
            with self._wakeup:
                while not self._closed and (not self._heap or self._heap[0][0] > self._clock()):
                    timeout = self._heap[0][0] - self._clock() if self._heap else None
                    self._wakeup.wait(timeout)
                if self._closed:
                    return
                _, _, job = heapq.heappop(self._heap)
            self._ready.put(job)

    def _work_loop(self) -> None:
        while True:
            job = self._ready.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # a failing job must not kill the worker; the job logs its context
                log.exception("simulator background job failed")
