"""The reconciler: results whose webhook never came are fetched with getResponse.

A submitted job that has not completed `reconcile_after` seconds after its last news is due a
check. Due jobs are claimed with `FOR UPDATE SKIP LOCKED` and their next check is pushed back
(exponentially, per job, capped) in the same short transaction, so reconcilers on several
machines share the work and no job is polled in a tight loop. What getResponse returns, as the
client read it, goes through the same idempotent ingestion as a webhook; only an error about
the task with a permanent code fails it, any other error waits for the next check. A job older
than `max_age` ends failed with the reason `expired`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from remixq import jobs, native
from remixq.db import utcnow
from remixq.ingest import DEFAULT_LIMITS, Limits, Outcome, ingest_poll
from remixq.models import Job
from remixq.providers.runware.results import PollResult
from remixq.states import OPEN, JobStatus


@dataclass(frozen=True)
class Due:
    job_id: int
    task_uuid: str
    checks: int


def next_delay(checks: int, *, first: timedelta, cap: timedelta) -> timedelta:
    """The wait before check number `checks + 1`: doubling from `first`, capped."""
    doubled: timedelta = first * 2 ** min(checks, 20)
    return min(cap, doubled)


def _became_due(session: Session, reconcile_after: timedelta) -> ColumnElement[Any]:
    """When a job became due: its next check, or for a job never checked, its last news plus
    `reconcile_after`. Ordering by it serves the longest-waiting first, so first checks never
    starve behind re-checks (sorting by `next_check_at` alone puts NULLs last on PostgreSQL)."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no interval arithmetic; its timestamps are ISO text, compared as text.
        first: ColumnElement[Any] = func.strftime(
            "%Y-%m-%d %H:%M:%f", Job.updated_at, f"+{reconcile_after.total_seconds()} seconds"
        )
    else:
        seconds = reconcile_after.total_seconds()
        first = Job.updated_at + func.make_interval(0, 0, 0, 0, 0, 0, seconds)
    return func.coalesce(Job.next_check_at, first)


def take_due(
    session: Session, *, reconcile_after: timedelta, cap: timedelta, limit: int
) -> list[Due]:
    """Claim up to `limit` due jobs, the longest-waiting first, and push their next check
    back."""
    now = utcnow()
    due = and_(
        Job.status == JobStatus.SUBMITTED.value,
        # A synchronous provider's job is never polled: its call's answer is all there is.
        native.not_native(),
        or_(
            Job.next_check_at <= now,
            and_(Job.next_check_at.is_(None), Job.updated_at <= now - reconcile_after),
        ),
    )
    rows = session.execute(
        select(Job.id, Job.task_uuid, Job.checks)
        .where(due)
        .order_by(_became_due(session, reconcile_after), Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        session.execute(
            update(Job)
            .where(Job.id == row.id)
            .values(
                checks=Job.checks + 1,
                next_check_at=now + next_delay(row.checks + 1, first=reconcile_after, cap=cap),
            )
        )
    return [Due(row.id, str(row.task_uuid), row.checks + 1) for row in rows]


def settle(poll: PollResult, *, check: int, final_from: int) -> PollResult:
    """The poll with its lasting task errors made final.

    An error that names the task but has a transient code is deferred: the provider may still
    be working on it. When the provider still reports it on check number `final_from` or later
    (the checks back off, so that is minutes after the first) and nothing of the task is in
    progress, it is the task's outcome, as a webhook carrying it would have been: otherwise a
    generation that ended in, say, `timeoutProvider` and whose webhook was lost would stay open
    until it expires. Errors that name no task stay deferred: they are about the request.
    """
    lasting = [error for error in poll.deferred if error.task_uuid is not None]
    if check < final_from or poll.processing or not lasting:
        return poll
    untied = [error for error in poll.deferred if error.task_uuid is None]
    return replace(poll, errors=[*poll.errors, *lasting], deferred=untied)


def apply_poll(
    session: Session, poll: PollResult, *, limits: Limits = DEFAULT_LIMITS
) -> Outcome | None:
    """Ingest a getResponse answer as if it were a webhook (kept in the inbox as `poll`), within
    the same `limits` (an absurd cost is refused here too); None when it has neither a result
    nor a final error yet. Its `deferred` errors (transient, or not tied to the task) fail
    nothing: the job keeps the next check `take_due` gave it."""
    if not poll.results and not poll.errors:
        return None
    return ingest_poll(session, poll, limits=limits)


def expire_old(session: Session, *, max_age: timedelta, limit: int = 1000) -> int:
    """Fail the open jobs older than `max_age` with the reason `expired`."""
    ids = list(
        session.scalars(
            select(Job.id)
            .where(
                Job.status.in_(sorted(s.value for s in OPEN)),
                Job.created_at <= utcnow() - max_age,
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    jobs.fail(
        session,
        job_ids=ids,
        code="expired",
        message=f"no final result within {max_age.total_seconds():.0f} s",
    )
    return len(ids)
