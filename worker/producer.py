"""Handing committed jobs to the broker: ids only, after the commit that created them."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from remixq import jobs
from remixq.db import transaction
from worker.app import SUBMIT_TASK


def enqueue(app: Celery, sessions: sessionmaker[Session], job_ids: Sequence[int]) -> None:
    """Publish one message per job, then mark the jobs queued.

    If this process dies between the two, the jobs stay pending and the relay publishes them
    again; a duplicate message is harmless because a submission must first claim its job.
    """
    with app.producer_or_acquire() as producer:
        for job_id in job_ids:
            app.send_task(SUBMIT_TASK, args=[job_id], producer=producer)
    with transaction(sessions) as session:
        jobs.mark_enqueued(session, job_ids=job_ids)
