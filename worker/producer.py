"""Handing committed jobs to the broker: ids only, after the commit that created them."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from remixq import jobs
from remixq.db import transaction
from worker.names import SUBMIT_TASK

ENQUEUE_CHUNK = 1000


def publish(app: Celery, job_ids: Sequence[int], *, batch: int) -> None:
    """One message per `batch` jobs (REMIXQ_SUBMIT_BATCH), each submitted in one request."""
    with app.producer_or_acquire() as producer:
        for start in range(0, len(job_ids), batch):
            ids = list(job_ids[start : start + batch])
            app.send_task(SUBMIT_TASK, args=[ids], producer=producer)


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
        publish(app, chunk, batch=batch)
        with transaction(sessions) as session:
            jobs.mark_enqueued(session, job_ids=chunk)
