"""The worker's pools. `remixq worker` serves Runware's submissions on its main pool and starts
the others beside it, each in a child process of its own: the background pool (beat's ticks and
the image downloads, `remixq worker --serve background`) and the native pool (the synchronous
calls to Ideogram's own API, `remixq worker --serve native`).

Why apart: a pool's threads run its messages in the order they came. A submission waits in its
thread for the provider's limit (worker.observed.waited_permit), so in a campaign paced by that
limit every thread of the main pool waits, with more submissions prefetched behind them; a tick
of beat's (the relay, the reconciler, the asset sweep, the schedules) or an image download
queued behind those would wait for minutes, and a tick would expire unrun. Each kind of work
has threads no other kind can hold.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from celery import signals

log = logging.getLogger("remixq.worker")

# Where a child pool's /metrics are, from its parent's REMIXQ_METRICS_PORT.
METRICS_OFFSETS = {"native": 1, "background": 2}


def pools_beside(serves: Sequence[str], *, metrics_port: int | None) -> None:
    """`remixq worker --serve NAME` for each of `serves`, as children of this worker: started
    when this worker starts (Celery's worker_init), started again when one exits while this
    worker runs (after a pause that doubles, up to a minute, while it keeps exiting), stopped
    when this worker shuts down (worker_shutdown, or this process's exit), and by the kernel if
    this one dies first (Linux). With this worker's /metrics on `metrics_port`
    (REMIXQ_METRICS_PORT), a child's are on the port METRICS_OFFSETS names."""
    children = _Children(serves, metrics_port)
    signals.worker_init.connect(children.start, sender=None, weak=False)
    signals.worker_shutdown.connect(children.stop, weak=False)
    atexit.register(children.stop)


class _Children:
    RESTART_CAP = 60.0  # seconds

    def __init__(self, serves: Sequence[str], metrics_port: int | None):
        self.serves = list(serves)
        self.metrics_port = metrics_port
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def start(self, **_: Any) -> None:
        with self.lock:
            for serve in self.serves:
                self.running[serve] = self._spawn(serve)
        threading.Thread(target=self._watch, name="remixq-pools", daemon=True).start()

    def _spawn(self, serve: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        if self.metrics_port is not None:
            env["REMIXQ_METRICS_PORT"] = str(self.metrics_port + METRICS_OFFSETS[serve])
        # Many threads each decoding images: glibc's malloc gives each thread an arena of its own
        # (up to 8 per core) and keeps what they freed, so the pool's memory crept up through a
        # campaign (docs/benchmarks.md, the embedded default at size). Two arenas, as is usual
        # for threaded Python services, unless the operator chose otherwise.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        # A node name of its own: workers on one machine each start one (RabbitMQ refuses a
        # second consumer of one name's control queue).
        name = f"--hostname={serve}-{os.getpid()}@%h"
        return subprocess.Popen(
            [sys.executable, "-m", "remixq.cli", "worker", "--serve", serve, name],
            preexec_fn=_die_with_parent,  # only prctl, before exec
            env=env,
        )

    def _watch(self) -> None:
        pause = dict.fromkeys(self.serves, 1.0)
        due: dict[str, float] = {}
        while not self.stopping.wait(0.5):
            with self.lock:
                for serve, child in list(self.running.items()):
                    code = child.poll()
                    if code is None or self.stopping.is_set():
                        continue
                    now = time.monotonic()
                    if serve not in due:
                        due[serve] = now + pause[serve]
                        log.error(
                            "a worker pool exited; starting it again",
                            extra={"pool": serve, "exit_code": code, "in_s": pause[serve]},
                        )
                        pause[serve] = min(self.RESTART_CAP, pause[serve] * 2)
                    elif now >= due[serve]:
                        del due[serve]
                        self.running[serve] = self._spawn(serve)

    def stop(self, **_: Any) -> None:
        self.stopping.set()
        with self.lock:
            running = [child for child in self.running.values() if child.poll() is None]
            self.running.clear()
        for child in running:  # all asked at once: each finishes what it runs
            child.terminate()
        for child in running:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
