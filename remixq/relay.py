"""The relay: no job is lost between the database and the broker.

Jobs are committed before any message is published. A job whose message was never published
(the producer died after the commit), vanished (broker restarted without persistence, a worker
killed before its late ack took effect) or whose claim expired (a worker killed mid-submission)
is picked up here and published again. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so relays
on several machines never pick the same job in one round; and a duplicate message is harmless
anyway, since a submission must first claim its job.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from remixq import jobs
from remixq.db import utcnow
from remixq.models import Job
from remixq.states import JobStatus


def take_lost_jobs(
    session: Session,
    *,
    pending_grace: timedelta,
    queued_stale: timedelta,
    claim_lease: timedelta,
    limit: int = 1000,
) -> list[int]:
    """Ids of jobs to publish again, marked queued now; the caller publishes after the commit.

    If publishing then fails, the jobs look freshly queued and come back after `queued_stale`.
    """
    now = utcnow()
    lost = or_(
        and_(Job.status == JobStatus.PENDING.value, Job.updated_at <= now - pending_grace),
        and_(Job.status == JobStatus.QUEUED.value, Job.enqueued_at <= now - queued_stale),
        and_(Job.status == JobStatus.SUBMITTING.value, Job.claimed_at <= now - claim_lease),
    )
    ids = list(
        session.scalars(
            select(Job.id)
            .where(lost, jobs.not_paused())  # a paused campaign's jobs wait for its resume
            .order_by(Job.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    jobs.release_expired_claims(session, job_ids=ids)  # their worker died mid-submission
    jobs.mark_enqueued(session, job_ids=ids)  # pending ones move to queued, all re-stamped
    return ids
