"""The worker's pools: `remixq worker` serves Runware's submissions, beat's ticks and the image
downloads on its own pool, and starts the native pool (the synchronous calls to Ideogram's own
API, `remixq worker --serve native`) beside it, in a child process of its own."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
from typing import Any

from celery import signals


def native_pool_beside(*, metrics_port: int | None) -> None:
    """`remixq worker --serve native` as a child of this worker: started when this worker
    starts (Celery's worker_init), stopped when it shuts down (worker_shutdown, or this
    process's exit), and by the kernel if this one dies first (Linux). With this worker's
    /metrics on `metrics_port` (REMIXQ_METRICS_PORT), the child's are on the next port."""
    env = dict(os.environ)
    if metrics_port is not None:
        env["REMIXQ_METRICS_PORT"] = str(metrics_port + 1)
    children: list[subprocess.Popen[bytes]] = []

    def die_with_parent() -> None:
        if sys.platform.startswith("linux"):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)

    def start(**_: Any) -> None:
        # A node name of its own: workers on one machine each start one (RabbitMQ refuses a
        # second consumer of one name's control queue).
        name = f"--hostname=native-{os.getpid()}@%h"
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "remixq.cli", "worker", "--serve", "native", name],
                preexec_fn=die_with_parent,  # only prctl, before exec
                env=env,
            )
        )

    def stop(**_: Any) -> None:
        while children:
            child = children.pop()
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()

    signals.worker_init.connect(start, sender=None, weak=False)
    signals.worker_shutdown.connect(stop, weak=False)
    atexit.register(stop)
