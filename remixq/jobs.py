"""Domain operations on jobs: create, hand to the broker, claim, acknowledge, release, fail;
and the pause of a campaign whose account the provider refused (hold, resume).

Each function takes the session keyword-only and never commits: the edge (CLI command, Celery
task, HTTP view) owns the transaction. Status changes are conditional UPDATEs guarded by the
state machine in `remixq.states`, so two workers, a relay and a webhook can race on one job and
the database, not the caller's timing, decides who wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Table,
    Update,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from remixq.db import utcnow
from remixq.errors import FieldError, InvalidInput
from remixq.models import Campaign, Job
from remixq.providers.runware import build_task
from remixq.states import Event, JobStatus, sources, target

_jobs = Job.metadata.tables[Job.__tablename__]
_campaigns = Campaign.metadata.tables[Campaign.__tablename__]


@dataclass(frozen=True)
class NewJob:
    """A validated request, ready to become a job (`location` names its line in a file)."""

    request: Any  # a RemixRequest from remixq.providers.runware
    location: str | None = None


@dataclass(frozen=True)
class Claim:
    job_id: int
    task_uuid: str
    task: dict[str, Any]
    attempts: int


def get_or_create_campaign(
    session: Session, *, name: str, source: str | None, content_sha256: str | None = None
) -> Campaign:
    """The campaign `name`, made if new; content already stored (`content_sha256` known) is
    refused, naming the campaign it made.

    An insert-or-ignore, not a check then an insert: two producers racing on one name both get
    the one campaign, and two racing with one file get one campaign and one refusal, never an
    IntegrityError (on PostgreSQL the loser's insert waits for the winner's commit).
    """
    known = _campaign_with_content(session, content_sha256)
    if known is not None:
        raise _known_content(known, source)
    inserted = session.execute(
        _insert_or_ignore(session, _campaigns)
        .values(name=name, source=source, content_sha256=content_sha256, created_at=utcnow())
        .returning(_campaigns.c.id)
    ).scalar()
    campaign = session.scalar(
        select(Campaign).where(Campaign.id == inserted if inserted else Campaign.name == name)
    )
    if campaign is None:
        # The name is free, so the insert was ignored for its digest: another producer stored
        # the same content meanwhile.
        known = _campaign_with_content(session, content_sha256)
        if known is None:
            raise RuntimeError(f"the insert of campaign {name!r} was ignored without a conflict")
        raise _known_content(known, source)
    return campaign


def _campaign_with_content(session: Session, content_sha256: str | None) -> Campaign | None:
    if content_sha256 is None:
        return None
    return session.scalar(select(Campaign).where(Campaign.content_sha256 == content_sha256))


def _known_content(known: Campaign, source: str | None) -> InvalidInput:
    return InvalidInput(
        [
            FieldError(
                "FILE",
                source,
                f"content not submitted yet; the same content is campaign {known.name!r}"
                f" (id {known.id}): pass --again for a second copy",
            )
        ]
    )


def _insert_or_ignore(session: Session, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING: PostgreSQL and SQLite spell it alike."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def create_jobs(
    session: Session,
    *,
    campaign: Campaign | None,
    new_jobs: Sequence[NewJob],
) -> list[int]:
    """Insert one pending job per request, with its exact task; returns the new job ids.

    A request that names its own taskUUID keeps it (an idempotency key of the producer's), in its
    canonical lowercase spelling; one already known is refused, naming the line and the campaign
    that has it, so that re-running a file cannot pay twice. The insert ignores a taskUUID that a
    concurrent producer stored after the check, and that one is refused the same way. The
    stored task has no webhookURL: the worker adds its own at hand-off.
    """
    rows: list[dict[str, Any]] = []
    locations: list[str | None] = []
    for new in new_jobs:
        given = new.request.task_uuid
        task_uuid = str(uuid.UUID(str(given))) if given else str(uuid.uuid4())
        task = build_task(new.request, task_uuid=task_uuid, webhook_url=None)
        rows.append(
            {
                "campaign_id": campaign.id if campaign else None,
                "task_uuid": task_uuid,
                "provider": "runware",
                "model": task["model"],
                "request": task,
                "number_results": task.get("numberResults", 1),
                "results_received": 0,
                "status": JobStatus.PENDING.value,
                "attempts": 0,
                "checks": 0,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        )
        locations.append(new.location)
    _refuse_known_task_uuids(session, [row["task_uuid"] for row in rows], locations)
    if not rows:
        return []
    statement = _insert_or_ignore(session, _jobs).returning(_jobs.c.id, _jobs.c.task_uuid)
    inserted = {
        str(task_uuid): row_id
        for row_id, task_uuid in session.connection().execute(statement, rows)
    }
    if len(inserted) < len(rows):
        lost = [
            (row["task_uuid"], location)
            for row, location in zip(rows, locations, strict=True)
            if row["task_uuid"] not in inserted
        ]
        raise InvalidInput(_used_task_uuids(session, lost))
    return [inserted[row["task_uuid"]] for row in rows]


def _refuse_known_task_uuids(
    session: Session, task_uuids: Sequence[str], locations: Sequence[str | None]
) -> None:
    """Refuse a taskUUID given twice in one file or already stored (canonical spellings, so the
    check ignores case)."""
    seen: dict[str, str | None] = {}
    errors = []
    for task_uuid, location in zip(task_uuids, locations, strict=True):
        if task_uuid in seen:
            errors.append(
                FieldError(
                    "taskUUID",
                    task_uuid,
                    f"a taskUUID used once only; it is also on {seen[task_uuid]}",
                    location,
                )
            )
        seen[task_uuid] = location
    errors.extend(_used_task_uuids(session, list(seen.items())))
    if errors:
        raise InvalidInput(errors)


def _used_task_uuids(
    session: Session, wanted: Sequence[tuple[str, str | None]]
) -> list[FieldError]:
    """A refusal for each (taskUUID, location) a stored job has, naming that job's campaign."""
    owners: dict[str, str | None] = {}
    uuids = [task_uuid for task_uuid, _ in wanted]
    for start in range(0, len(uuids), 500):
        owners.update(
            (str(task_uuid), name)
            for task_uuid, name in session.execute(
                select(Job.task_uuid, Campaign.name)
                .outerjoin(Campaign, Job.campaign_id == Campaign.id)
                .where(Job.task_uuid.in_(uuids[start : start + 500]))
            )
        )
    return [
        FieldError(
            "taskUUID",
            task_uuid,
            "a taskUUID no job has used yet; it is already used by "
            + (f"campaign {owners[task_uuid]!r}" if owners[task_uuid] else "a job"),
            location,
        )
        for task_uuid, location in wanted
        if task_uuid in owners
    ]


def mark_enqueued(session: Session, *, job_ids: Iterable[int]) -> None:
    """Record that a message for each job was handed to the broker (after the commit)."""
    ids = list(job_ids)
    now = utcnow()
    for start in range(0, len(ids), 1000):
        session.execute(
            update(Job)
            .where(
                Job.id.in_(ids[start : start + 1000]),
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


_CLAIM = (
    update(_jobs)
    .where(
        _jobs.c.id.in_(bindparam("job_ids", expanding=True)),
        or_(
            _jobs.c.status.in_(sorted(status.value for status in sources(Event.CLAIM))),
            and_(
                _jobs.c.status == JobStatus.SUBMITTING.value,
                _jobs.c.claimed_at < bindparam("stale_before"),
            ),
        ),
        not_paused(),
    )
    .values(
        status=JobStatus.SUBMITTING.value,
        attempts=_jobs.c.attempts + 1,
        claimed_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(_jobs.c.id, _jobs.c.task_uuid, _jobs.c.request, _jobs.c.attempts)
)


def claim(session: Session, *, job_ids: Sequence[int], lease: timedelta) -> list[Claim]:
    """Take jobs for submission; those taken, done, held by a live claim or in a paused campaign
    are left out. Each claim counts as an attempt (`Job.attempts`, the job's retry budget).

    A claim older than `lease` belongs to a worker that died mid-submission; taking it over is
    safe because the task keeps its taskUUID (a second submission gets conflictTaskUUID).
    """
    now = utcnow()
    rows = session.connection().execute(
        _CLAIM, {"job_ids": list(job_ids), "now": now, "stale_before": now - lease}
    )
    claims = [
        Claim(job_id=row.id, task_uuid=str(row.task_uuid), task=row.request, attempts=row.attempts)
        for row in rows
    ]
    return sorted(claims, key=lambda c: c.job_id)


@cache
def _transition_statement(event: Event, columns: tuple[str, ...]) -> Update:
    return (
        update(_jobs)
        .where(
            _jobs.c.id.in_(bindparam("job_ids", expanding=True)),
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
            .values(paused_at=now, pause_reason=reason)
            .returning(_campaigns.c.id)
        )
        .scalars()
    )
    if paused:
        session.connection().execute(
            update(_jobs)
            .where(_jobs.c.campaign_id.in_(paused), _jobs.c.status == JobStatus.QUEUED.value)
            .values(status=target(Event.HOLD).value, updated_at=now)
        )
    return paused


def resume_campaigns(
    session: Session, *, campaign_id: int | None = None
) -> tuple[list[int], list[int]]:
    """Lift the pause of one campaign (or of every paused one); returns the campaigns resumed
    and their jobs waiting to be handed to the broker (pending or queued), which the caller
    publishes after the commit."""
    query = update(_campaigns).where(_campaigns.c.paused_at.is_not(None))
    if campaign_id is not None:
        query = query.where(_campaigns.c.id == campaign_id)
    resumed = list(
        session.connection()
        .execute(query.values(paused_at=None, pause_reason=None).returning(_campaigns.c.id))
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


def any_paused(session: Session) -> bool:
    """Whether some campaign waits for the account to be usable again."""
    found = session.connection().execute(
        select(_campaigns.c.id).where(_campaigns.c.paused_at.is_not(None)).limit(1)
    )
    return found.first() is not None


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


def retry_failed(
    session: Session,
    *,
    campaign_id: int | None = None,
    task_uuid: str | None = None,
) -> list[int]:
    """New attempts for failed jobs: a new taskUUID each (the provider would refuse the old one
    as a conflict), linked to the failed job, which stays failed with its cost on record.

    A failed job that already has a retry is left alone, so running this twice retries once.
    """
    retried = select(Job.retry_of_id).where(Job.retry_of_id.is_not(None))
    query = select(Job).where(Job.status == JobStatus.FAILED.value, Job.id.not_in(retried))
    if campaign_id is not None:
        query = query.where(Job.campaign_id == campaign_id)
    if task_uuid is not None:
        query = query.where(Job.task_uuid == task_uuid)
    rows = []
    now = utcnow()
    for old in session.scalars(query.order_by(Job.id).with_for_update()):
        new_uuid = str(uuid.uuid4())
        # A job stored by an earlier version carries a webhookURL; the worker adds its own.
        task = {k: v for k, v in old.request.items() if k != "webhookURL"} | {"taskUUID": new_uuid}
        rows.append(
            {
                "campaign_id": old.campaign_id,
                "task_uuid": new_uuid,
                "provider": old.provider,
                "model": old.model,
                "request": task,
                "number_results": old.number_results,
                "results_received": 0,
                "status": JobStatus.PENDING.value,
                "attempts": 0,
                "retry_of_id": old.id,
                "created_at": now,
                "updated_at": now,
            }
        )
    if not rows:
        return []
    result = session.execute(insert(Job).returning(Job.id, sort_by_parameter_order=True), rows)
    return [row_id for (row_id,) in result]
