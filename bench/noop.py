"""The baseline task of the submission benchmark: it does nothing.

Loaded into the real `remixq worker` with Celery's `--include bench.noop`: a shared task binds
to the worker's app, so the no-op and the real submissions are drained by the same process with
the same pool, concurrency, prefetch, acks and logging.
"""

from __future__ import annotations

from celery import shared_task

NOOP_TASK = "bench.noop"


@shared_task(name=NOOP_TASK, ignore_result=True, acks_late=True)
def noop(*_args: object) -> None:
    return None
