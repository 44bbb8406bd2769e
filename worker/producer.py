"""Handing committed jobs to the broker: ids only, after the commit that created them.

Runware's jobs go to the submission queue, `batch` per message (one request submits them all);
a synchronous provider's (`remixq.native`) to the native queue, one per message (one call
each). The split is read from the jobs' rows, so every path that hands jobs over (a producer,
the relay, a resume, a schedule) routes them alike."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from remixq import jobs, native
from remixq.db import transaction
from worker.names import NATIVE_QUEUE, NATIVE_TASK, SUBMIT_TASK

ENQUEUE_CHUNK = 1000


def publish(
    app: Celery, job_ids: Sequence[int], *, batch: int, native_ids: Collection[int] = ()
) -> None:
    """One message per `batch` jobs (REMIXQ_SUBMIT_BATCH), each submitted in one request; the
    jobs of `native_ids` (`remixq.native.waiting`) one message each on the native queue."""
    submitted = [job_id for job_id in job_ids if job_id not in native_ids]
    with app.producer_or_acquire() as producer:
        for start in range(0, len(submitted), batch):
            ids = submitted[start : start + batch]
            app.send_task(SUBMIT_TASK, args=[ids], producer=producer)
        for job_id in job_ids:
            if job_id in native_ids:
                app.send_task(NATIVE_TASK, args=[job_id], queue=NATIVE_QUEUE, producer=producer)


def enqueue(
    app: Celery, sessions: sessionmaker[Session], job_ids: Sequence[int], *, batch: int
) -> None:
    """Publish the jobs' messages, then mark the jobs queued, a chunk at a time (so that a big
    campaign's first jobs are not mistaken for lost while its last ones are still published).

    If this process dies in between, the jobs stay pending and the relay publishes them again;
    a duplicate message is harmless because a submission must first claim its job.
    """
    for start in range(0, len(job_ids), ENQUEUE_CHUNK):
        chunk = job_ids[start : start + ENQUEUE_CHUNK]
        with transaction(sessions) as session:
            native_ids = native.among(session, chunk)
        publish(app, chunk, batch=batch, native_ids=native_ids)
        with transaction(sessions) as session:
            jobs.mark_enqueued(session, job_ids=chunk)
