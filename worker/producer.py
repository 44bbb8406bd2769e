"""Handing committed jobs to the broker: ids only, after the commit that created them."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from remixq import jobs
from remixq.db import transaction
from worker.app import SUBMIT_TASK


def publish(app: Celery, job_ids: Sequence[int]) -> None:
    """One message per batch of jobs (REMIXQ_SUBMIT_BATCH), each submitted in one request."""
    size = app.remixq_settings.submit_batch
    with app.producer_or_acquire() as producer:
        for start in range(0, len(job_ids), size):
            batch = list(job_ids[start : start + size])
            app.send_task(SUBMIT_TASK, args=[batch], producer=producer)


def enqueue(app: Celery, sessions: sessionmaker[Session], job_ids: Sequence[int]) -> None:
    """Publish the jobs' messages, then mark the jobs queued.

    If this process dies between the two, the jobs stay pending and the relay publishes them
    again; a duplicate message is harmless because a submission must first claim its job.
    """
    publish(app, job_ids)
    with transaction(sessions) as session:
        jobs.mark_enqueued(session, job_ids=job_ids)
