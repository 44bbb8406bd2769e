"""The relay: no job is lost between the database and the broker.

Jobs are committed before any message is published. A job whose message was never published
(the producer died after the commit), vanished (broker restarted without persistence, a worker
killed before its late ack took effect) or whose claim expired (a worker killed mid-submission)
is picked up here and published again. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so relays
on several machines never pick the same job in one round; and a duplicate message is harmless
anyway, since a submission must first claim its job.

A queued job is not lost merely for being old: under a low rate limit a long backlog waits in
the broker for longer than `queued_stale`, and publishing it again every round would only add
duplicates (each costs a claim attempt and broker traffic). So the relay weighs the queued jobs
against the messages the broker still holds for them (`broker_messages`: those waiting in the
queue plus those a worker holds unacknowledged, prefetched, running or waiting for a retry's
countdown), each carrying up to `batch` jobs:

- a job pending past `pending_grace` (never handed over) or submitting past `claim_lease` (its
  worker died) is lost, whatever the broker holds;
- a job queued past `queued_stale` is lost only when the broker cannot account for it: when the
  queued jobs outnumber what the held messages can carry (`broker_messages * batch`), the
  shortfall is taken from the oldest stale jobs, those whose messages a FIFO queue would have
  delivered first; an empty queue with nothing held accounts for none of them;
- when the broker cannot tell (`broker_messages` answers None), every stale queued job is
  lost, as before this rule.

A held message counts only while it carries a queued job (`queued_among`: the broker reads
the ids of the messages delivered within `queued_stale`, a number bounded by the delivery rate).
Waiting messages are counted, not read (a backlog can be long): those that carry no queued job
(duplicates, jobs already claimed) make the broker look fuller than it is, so a lost message can
hide behind them until the backlog drains; it is then found within `queued_stale`. The converse
mistake, publishing a waiting job again, is what this rule keeps rare.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import timedelta

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from remixq import jobs, native
from remixq.db import utcnow
from remixq.models import Job
from remixq.states import JobStatus


def take_lost_jobs(
    session: Session,
    *,
    pending_grace: timedelta,
    queued_stale: timedelta,
    claim_lease: timedelta,
    broker_messages: Callable[[], int | None],
    batch: int,
    limit: int = 1000,
    native_lease: timedelta | None = None,
    native_messages: Callable[[], int | None] = lambda: None,
) -> list[int]:
    """Ids of jobs to publish again, marked queued now; the caller publishes after the commit.

    `broker_messages` asks the broker what it holds for the submission queue (module
    docstring); it is asked after the queued jobs are counted, so that a producer caught in
    between (it publishes, then marks its jobs queued) adds messages, never unaccounted jobs.
    `batch` is the most jobs one message carries. If publishing then fails, the jobs look
    freshly queued and come back after `queued_stale`.

    A synchronous provider's jobs (`remixq.native`) have a queue of their own, one job per
    message: their queued jobs are weighed against `native_messages` (what the broker holds
    for the native queue), and their claims expire after `native_lease` (the call's timeout
    and more). One whose call was sent is not taken here: its answer is lost, which
    `remixq.native.take_lost_calls` handles first (the relay's caller), never a blind call.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    now = utcnow()
    native_lease = native_lease or claim_lease
    is_native = native.native_job()
    never_handed_over_or_dead = or_(
        and_(Job.status == JobStatus.PENDING.value, Job.updated_at <= now - pending_grace),
        and_(
            Job.status == JobStatus.SUBMITTING.value,
            ~is_native,
            Job.claimed_at <= now - claim_lease,
        ),
        and_(
            Job.status == JobStatus.SUBMITTING.value,
            is_native,
            Job.call_sent_at.is_(None),
            Job.claimed_at <= now - native_lease,
        ),
    )
    ids = _lock(
        session,
        select(Job.id).where(never_handed_over_or_dead).order_by(Job.id),
        limit=limit,
    )
    for of_queue, messages, per_message in (
        (~is_native, broker_messages, batch),
        (is_native, native_messages, 1),
    ):
        room = limit - len(ids)
        if room > 0:
            room = min(room, _unaccounted(session, of_queue, messages, per_message))
        if room > 0:
            ids += _lock(
                session,
                select(Job.id)
                .where(
                    Job.status == JobStatus.QUEUED.value,
                    of_queue,
                    Job.enqueued_at <= now - queued_stale,
                )
                .order_by(Job.enqueued_at, Job.id),  # the oldest first: their turn came long ago
                limit=room,
            )
    if not ids:
        return []
    jobs.release_expired_claims(session, job_ids=ids)  # their worker died mid-submission
    jobs.mark_enqueued(session, job_ids=ids)  # pending ones move to queued, all re-stamped
    return ids


def queued_among(session: Session, job_ids: Collection[int]) -> set[int]:
    """Those of `job_ids` still queued: what a message the broker holds still carries."""
    ids = sorted(job_ids)
    queued: set[int] = set()
    for start in range(0, len(ids), 1000):
        queued.update(
            session.scalars(
                select(Job.id).where(
                    Job.id.in_(ids[start : start + 1000]),
                    Job.status == JobStatus.QUEUED.value,
                )
            )
        )
    return queued


def _unaccounted(
    session: Session,
    of_queue: ColumnElement[bool],
    broker_messages: Callable[[], int | None],
    batch: int,
) -> int:
    """How many queued jobs (`of_queue`: those one queue carries) the broker's messages cannot
    carry (all of them when it cannot tell). Every queued job counts, fresh ones too: their
    messages sit behind the stale ones'."""
    queued = session.scalar(
        select(func.count()).select_from(Job).where(Job.status == JobStatus.QUEUED.value, of_queue)
    )
    held = broker_messages()
    if held is None:
        return int(queued or 0)
    return max(0, int(queued or 0) - held * batch)


def _lock(session: Session, query: Select[int], *, limit: int) -> list[int]:
    if limit <= 0:
        return []
    statement = (
        query.where(jobs.not_paused())  # a paused campaign's jobs wait for its resume
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))
