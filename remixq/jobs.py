"""Domain operations on stored jobs: hand to the broker, claim, acknowledge, release, fail; the
pause of a campaign whose account the provider refused (hold, resume) or that a person paused;
and the cancel of a campaign's unsubmitted jobs. Making jobs from requests is
`remixq.producing`; the campaign-level controls people and programs call are `remixq.control`.

Each function takes the session keyword-only and never commits: the edge (CLI command, Celery
task, HTTP view) owns the transaction. Status changes are conditional UPDATEs guarded by the
state machine in `remixq.states`, so two workers, a relay and a webhook can race on one job and
the database, not the caller's timing, decides who wins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Update,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from remixq import budgets
from remixq.db import utcnow
from remixq.models import Campaign, Job
from remixq.provider_kinds import sync_providers
from remixq.states import Event, JobStatus, PausedBy, sources, target

log = logging.getLogger("remixq.budgets")
_jobs = Job.metadata.tables[Job.__tablename__]
_campaigns = Campaign.metadata.tables[Campaign.__tablename__]


@dataclass(frozen=True)
class Claim:
    job_id: int
    task_uuid: str
    task: dict[str, Any]
    attempts: int
    campaign_id: int | None = None


def mark_enqueued(session: Session, *, job_ids: Iterable[int]) -> None:
    """Record that a message for each job was handed to the broker (after the commit)."""
    ids = list(job_ids)
    now = utcnow()
    for start in range(0, len(ids), 1000):
        session.execute(
            update(Job)
            .where(
                _locked_in_id_order(ids[start : start + 1000]),
                Job.status.in_(sources(Event.ENQUEUE) | {JobStatus.QUEUED}),
            )
            .values(status=JobStatus.QUEUED.value, enqueued_at=now, updated_at=now)
        )


# The claim and the transitions run on every batch a worker submits, so their statements are
# built once, with bound parameters, and executed as Core statements on the jobs table: building
# them per call, and the ORM's session synchronisation, cost more than the work
# (docs/benchmarks.md). They work on ids and return rows or counts: a `Job` a caller holds
# in the same session is not refreshed by them (none of the callers holds one).


def not_paused() -> ColumnElement[bool]:
    """True for a job outside any paused campaign: the claim and the relay leave the others
    alone until their campaign is resumed."""
    paused = select(_campaigns.c.id).where(_campaigns.c.paused_at.is_not(None))
    return or_(_jobs.c.campaign_id.is_(None), _jobs.c.campaign_id.not_in(paused))


def _locked_in_id_order(ids: Any) -> ColumnElement[bool]:
    """`jobs.id IN ids`, with the rows locked in id order first (PostgreSQL; SQLite has one
    writer at a time). An UPDATE over an IN list locks rows in the order its plan visits them
    (index order for a few ids, heap order for a bitmap scan of many), so a producer marking
    1,000 jobs enqueued and a worker recording 10 of them accepted could each hold a row the
    other waited for: a deadlock. Every statement that changes several jobs, and the ingest
    (`ORDER BY id FOR UPDATE`), lock in the same order instead."""
    locked = select(_jobs.c.id).where(_jobs.c.id.in_(ids)).order_by(_jobs.c.id).with_for_update()
    return _jobs.c.id.in_(locked.scalar_subquery())


_CLAIM = (
    update(_jobs)
    .where(
        _locked_in_id_order(bindparam("job_ids", expanding=True)),
        or_(
            _jobs.c.status.in_(sorted(status.value for status in sources(Event.CLAIM))),
            and_(
                _jobs.c.status == JobStatus.SUBMITTING.value,
                _jobs.c.claimed_at < bindparam("stale_before"),
            ),
        ),
        not_paused(),
        # A synchronous provider's jobs are claimed by their own protocol (remixq.native).
        _jobs.c.provider.not_in(bindparam("native_providers", expanding=True)),
    )
    .values(
        status=JobStatus.SUBMITTING.value,
        attempts=_jobs.c.attempts + 1,
        claimed_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(
        _jobs.c.id, _jobs.c.task_uuid, _jobs.c.request, _jobs.c.attempts, _jobs.c.campaign_id
    )
)


def claim(session: Session, *, job_ids: Sequence[int], lease: timedelta) -> list[Claim]:
    """Take jobs for submission; those taken, done, held by a live claim or in a paused campaign
    are left out. Each claim counts as an attempt (`Job.attempts`, the job's retry budget).

    A campaign whose spend plus open reservations passed its budget (an estimate was overrun)
    is paused first (`hold_over_budget`), so none of its jobs is taken.

    A claim older than `lease` belongs to a worker that died mid-submission; taking it over is
    safe because the task keeps its taskUUID (a second submission gets conflictTaskUUID).
    A synchronous provider's job is never taken here (`remixq.native.claim` takes it).
    """
    hold_over_budget(session, job_ids=job_ids)
    now = utcnow()
    rows = session.connection().execute(
        _CLAIM,
        {
            "job_ids": list(job_ids),
            "now": now,
            "stale_before": now - lease,
            "native_providers": sorted(sync_providers()),
        },
    )
    claims = [
        Claim(
            job_id=row.id,
            task_uuid=str(row.task_uuid),
            task=row.request,
            attempts=row.attempts,
            campaign_id=row.campaign_id,
        )
        for row in rows
    ]
    return sorted(claims, key=lambda c: c.job_id)


@cache
def _transition_statement(event: Event, columns: tuple[str, ...]) -> Update:
    return (
        update(_jobs)
        .where(
            _locked_in_id_order(bindparam("job_ids", expanding=True)),
            _jobs.c.status.in_(sorted(status.value for status in sources(event))),
        )
        .values(
            status=target(event).value,
            updated_at=bindparam("now"),
            **{column: bindparam(f"new_{column}") for column in columns},
        )
    )


def _transition(session: Session, job_ids: Sequence[int], event: Event, **values: Any) -> int:
    """Apply `event` to the jobs in a status it moves; returns how many moved (0: a no-op)."""
    statement = _transition_statement(event, tuple(sorted(values)))
    parameters = {f"new_{column}": value for column, value in values.items()}
    result = session.connection().execute(
        statement, {"job_ids": list(job_ids), "now": utcnow(), **parameters}
    )
    return int(result.rowcount)


def record_accepted(session: Session, *, job_ids: Sequence[int]) -> int:
    """The provider acknowledged the tasks; a no-op for jobs a webhook already moved on."""
    return _transition(session, job_ids, Event.ACCEPT, submitted_at=utcnow())


def release(
    session: Session, *, job_ids: Sequence[int], code: str, message: str, retry_at: datetime
) -> int:
    """A transient failure: give the jobs back to the queue, keeping the error for the record."""
    return _transition(
        session,
        job_ids,
        Event.RELEASE,
        error_code=code,
        error_message=message,
        enqueued_at=retry_at,
        claimed_at=None,
    )


def release_expired_claims(session: Session, *, job_ids: Sequence[int]) -> int:
    """Give jobs whose claim expired (their worker died mid-submission) back to the queue, without
    an error of their own: the relay publishes them again."""
    return _transition(session, job_ids, Event.RELEASE, claimed_at=None, enqueued_at=utcnow())


_HOLD = (
    update(_jobs)
    .where(
        _jobs.c.id.in_(bindparam("job_ids", expanding=True)),
        _jobs.c.status == JobStatus.SUBMITTING.value,
    )
    .values(
        status=target(Event.HOLD).value,
        # The provider refused the account, not the task: this attempt does not count.
        attempts=_jobs.c.attempts - 1,
        claimed_at=None,
        updated_at=bindparam("now"),
    )
)


def hold(session: Session, *, job_ids: Sequence[int]) -> int:
    """Claimed jobs back to pending after an account-level refusal, without an error and without
    spending their attempt; returns how many moved."""
    result = session.connection().execute(_HOLD, {"job_ids": list(job_ids), "now": utcnow()})
    return int(result.rowcount)


def pause_campaigns(session: Session, *, job_ids: Sequence[int], reason: str) -> list[int]:
    """Pause the campaigns of these jobs (the provider refused the account: `reason`); returns
    the ids of those newly paused. Their queued jobs go back to pending with them, so that
    nothing of theirs is claimed or relayed until `resume_campaigns`."""
    now = utcnow()
    of_jobs = select(_jobs.c.campaign_id).where(_jobs.c.id.in_(list(job_ids)))
    paused = list(
        session.connection()
        .execute(
            update(_campaigns)
            .where(_campaigns.c.id.in_(of_jobs), _campaigns.c.paused_at.is_(None))
            .values(paused_at=now, pause_reason=reason, paused_by=PausedBy.ACCOUNT.value)
            .returning(_campaigns.c.id)
        )
        .scalars()
    )
    if paused:
        _hold_queued(session, paused, now)
    return paused


def _hold_queued(session: Session, campaign_ids: list[int], now: datetime) -> None:
    """The queued jobs of paused campaigns back to pending: the relay leaves them alone, and a
    resume hands them to the broker again."""
    session.connection().execute(
        update(_jobs)
        .where(_jobs.c.campaign_id.in_(campaign_ids), _jobs.c.status == JobStatus.QUEUED.value)
        .values(status=target(Event.HOLD).value, updated_at=now)
    )


def hold_over_budget(session: Session, *, job_ids: Sequence[int]) -> list[int]:
    """Pause (`paused_by` "budget") the running campaigns of these jobs whose spend plus what
    their open jobs reserve passed their budget (`remixq.budgets.overspent`), and put their
    queued jobs back to pending; returns the campaigns newly paused. Only a resume naming the
    campaign lifts such a pause (`remixq budget` does, once the budget is raised)."""
    now = utcnow()
    paused = []
    for over in budgets.overspent(session, job_ids=job_ids):
        row = (
            session.connection()
            .execute(
                update(_campaigns)
                .where(_campaigns.c.id == over.campaign_id, _campaigns.c.paused_at.is_(None))
                .values(paused_at=now, pause_reason=over.reason, paused_by=PausedBy.BUDGET.value)
                .returning(_campaigns.c.id)
            )
            .first()
        )
        if row is not None:
            paused.append(over.campaign_id)
            log.warning(over.reason, extra={"campaign_id": over.campaign_id})
    if paused:
        _hold_queued(session, paused, now)
    return paused


def pause_by_user(session: Session, *, campaign_id: int, reason: str) -> bool:
    """Pause one campaign because a person or a program asked; True when it was not paused by
    them already. A pause of the account's becomes theirs: the account probe then leaves it.
    Its queued jobs go back to pending; a job being submitted lands or is released (to wait)."""
    now = utcnow()
    paused = (
        session.connection()
        .execute(
            update(_campaigns)
            .where(
                _campaigns.c.id == campaign_id,
                or_(
                    _campaigns.c.paused_by.is_(None),
                    _campaigns.c.paused_by != PausedBy.USER.value,
                ),
            )
            .values(
                paused_at=func.coalesce(_campaigns.c.paused_at, now),
                pause_reason=reason,
                paused_by=PausedBy.USER.value,
            )
            .returning(_campaigns.c.id)
        )
        .first()
    )
    if paused is None:
        return False
    _hold_queued(session, [campaign_id], now)
    return True


def cancel(session: Session, *, campaign_id: int) -> int:
    """Cancel the campaign's jobs not yet submitted (pending, queued, submitting); returns how
    many. None of them is claimed, relayed or released again; one a worker was submitting lands
    if the provider accepts it (`remixq.states`)."""
    result = session.connection().execute(
        update(_jobs)
        .where(
            _jobs.c.campaign_id == campaign_id,
            _jobs.c.status.in_(sorted(status.value for status in sources(Event.CANCEL))),
        )
        .values(status=target(Event.CANCEL).value, updated_at=utcnow())
    )
    return int(result.rowcount)


def resume_campaigns(
    session: Session, *, campaign_id: int | None = None
) -> tuple[list[int], list[int]]:
    """Lift the pause of one campaign, whoever paused it, or (no `campaign_id`: the account
    probe, `remixq resume` without a campaign) of every campaign the account's refusal paused;
    a pause a person asked for is lifted only by naming its campaign. Returns the campaigns
    resumed and their jobs waiting to be handed to the broker (pending or queued), which the
    caller publishes after the commit."""
    query = update(_campaigns).where(_campaigns.c.paused_at.is_not(None))
    if campaign_id is not None:
        query = query.where(_campaigns.c.id == campaign_id)
    else:
        query = query.where(_account_paused())
    resumed = list(
        session.connection()
        .execute(
            query.values(paused_at=None, pause_reason=None, paused_by=None).returning(
                _campaigns.c.id
            )
        )
        .scalars()
    )
    if not resumed:
        return [], []
    waiting = session.connection().execute(
        select(_jobs.c.id)
        .where(
            _jobs.c.campaign_id.in_(resumed),
            _jobs.c.status.in_([JobStatus.PENDING.value, JobStatus.QUEUED.value]),
        )
        .order_by(_jobs.c.id)
    )
    return sorted(resumed), list(waiting.scalars())


def _account_paused() -> ColumnElement[bool]:
    # A pause without `paused_by` predates it, and every such pause was the account's.
    return and_(
        _campaigns.c.paused_at.is_not(None),
        or_(_campaigns.c.paused_by.is_(None), _campaigns.c.paused_by == PausedBy.ACCOUNT.value),
    )


def any_paused(session: Session, *, campaign_id: int | None = None) -> bool:
    """Whether some campaign (or campaign `campaign_id`) waits for the account to be usable
    again; a pause a person asked for is not the account's."""
    query = select(_campaigns.c.id).where(_account_paused())
    if campaign_id is not None:
        query = query.where(_campaigns.c.id == campaign_id)
    return session.connection().execute(query.limit(1)).first() is not None


def fail(session: Session, *, job_ids: Sequence[int], code: str, message: str) -> int:
    """Final failure with the provider's code and message; returns how many moved (a finished
    job is left as it is)."""
    return _transition(
        session,
        job_ids,
        Event.FAIL,
        error_code=code,
        error_message=message,
        finished_at=utcnow(),
    )
