"""Making jobs: a campaign found or created, validated requests stored as pending jobs (each
taskUUID and each campaign file's content once), and failed jobs given new attempts.

Each function takes the session keyword-only and never commits: the edge owns the transaction.
Uniqueness is kept by the database (insert-or-ignore on the unique columns), so two producers
racing on one taskUUID, campaign name or file get a field error, never an IntegrityError.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Insert, Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from remixq import budgets
from remixq.db import utcnow
from remixq.errors import FieldError, InvalidInput
from remixq.models import Campaign, Job
from remixq.pricing import PriceTable
from remixq.providers import DEFAULT_PROVIDER, provider_for
from remixq.states import JobStatus

_jobs = Job.metadata.tables[Job.__tablename__]
_campaigns = Campaign.metadata.tables[Campaign.__tablename__]


@dataclass(frozen=True)
class NewJob:
    """A validated request, ready to become a job (`location` names its line in a file;
    `variant`, the axis values of a spec's matrix that produced it, is kept on the job;
    `provider`, the name of the provider that validated it: remixq.providers)."""

    request: Any  # the provider's parsed request (a RemixRequest of its schemas)
    location: str | None = None
    variant: dict[str, Any] | None = None
    provider: str = DEFAULT_PROVIDER


def get_or_create_campaign(
    session: Session,
    *,
    name: str,
    source: str | None,
    content_sha256: str | None = None,
    budget_usd: Decimal | None = None,
) -> Campaign:
    """The campaign `name`, made if new (with `budget_usd`, if any); content already stored
    (`content_sha256` known) is refused, naming the campaign it made.

    An insert-or-ignore, not a check then an insert: two producers racing on one name both get
    the one campaign, and two racing with one file get one campaign and one refusal, never an
    IntegrityError (on PostgreSQL the loser's insert waits for the winner's commit).
    """
    known = _campaign_with_content(session, content_sha256)
    if known is not None:
        raise _known_content(known, source)
    inserted = session.execute(
        insert_or_ignore(session, _campaigns)
        .values(
            name=name,
            source=source,
            content_sha256=content_sha256,
            budget_usd=budget_usd,
            created_at=utcnow(),
        )
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


def create_campaign(
    session: Session,
    *,
    name: str,
    source: str | None,
    api_key_id: int | None = None,
    budget_usd: Decimal | None = None,
    schedule_id: int | None = None,
) -> int | None:
    """A new campaign `name`'s id (with `budget_usd`, if any; made by API key `api_key_id` or
    by schedule `schedule_id`, if so), or None when the name is taken: an insert-or-ignore, so
    two producers racing on one name make one campaign (on PostgreSQL the second insert waits
    for the first's commit, then is ignored)."""
    return session.execute(
        insert_or_ignore(session, _campaigns)
        .values(
            name=name,
            source=source,
            api_key_id=api_key_id,
            budget_usd=budget_usd,
            schedule_id=schedule_id,
            created_at=utcnow(),
        )
        .returning(_campaigns.c.id)
    ).scalar()


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


def insert_or_ignore(session: Session, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING: PostgreSQL and SQLite spell it alike."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def create_jobs(
    session: Session,
    *,
    campaign: Campaign | None,
    new_jobs: Sequence[NewJob],
    prices: PriceTable | None = None,
    budget: Decimal | budgets.Keep | budgets.Carried | None = budgets.KEEP,
) -> list[int]:
    """Insert one pending job per request, with its exact task (as its provider builds it:
    `NewJob.provider`, stored in `jobs.provider`); returns the new job ids.

    Each job stores its estimate (`prices`, the configured table; None: the defaults), and the
    campaign's row is locked and the estimates reserved against its budget before the jobs are
    inserted (`remixq.budgets.reserve`; `budget`, when given, is the campaign's budget from now
    on, and a `Carried` one must be its budget already): a submission that does not fit is
    refused whole with BudgetExceeded.

    A request that names its own taskUUID keeps it (an idempotency key of the producer's), in its
    canonical lowercase spelling; one already known is refused, naming the line and the campaign
    that has it, so that re-running a file cannot pay twice. The insert ignores a taskUUID that a
    concurrent producer stored after the check, and that one is refused the same way. The
    stored task has no webhookURL: the worker adds its own at hand-off.
    """
    table = prices or PriceTable.default()
    rows: list[dict[str, Any]] = []
    locations: list[str | None] = []
    for new in new_jobs:
        provider = provider_for(new.provider)
        given = provider.task_uuid_of(new.request)
        task_uuid = str(uuid.UUID(str(given))) if given else str(uuid.uuid4())
        task = provider.build_task(new.request, task_uuid=task_uuid)
        rows.append(
            {
                "campaign_id": campaign.id if campaign else None,
                "task_uuid": task_uuid,
                "provider": provider.name,
                "model": provider.model_of(task),
                "request": task,
                "estimated_cost": provider.estimate(task, table),
                "number_results": provider.number_results(task),
                "results_received": 0,
                "status": JobStatus.PENDING.value,
                "attempts": 0,
                "checks": 0,
                "variant": new.variant,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
        )
        locations.append(new.location)
    if campaign is not None:
        asked = sum((row["estimated_cost"] for row in rows), Decimal(0))
        budgets.reserve(session, campaign_id=campaign.id, asked=asked, budget=budget)
    _refuse_known_task_uuids(session, [row["task_uuid"] for row in rows], locations)
    if not rows:
        return []
    statement = insert_or_ignore(session, _jobs).returning(_jobs.c.id, _jobs.c.task_uuid)
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


def retry_failed(
    session: Session,
    *,
    campaign_id: int | None = None,
    task_uuid: str | None = None,
    prices: PriceTable | None = None,
) -> list[int]:
    """New attempts for failed jobs: a new taskUUID each (the provider would refuse the old one
    as a conflict), linked to the failed job, which stays failed with its cost on record.

    Each new attempt is estimated again (`prices`; None: the defaults) and reserved against its
    campaign's budget, as `create_jobs` does: the retries of a campaign that do not fit are
    refused whole (BudgetExceeded). A failed job's own reservation was settled when it failed.

    A failed job that already has a retry is left alone, so running this twice retries once.
    """
    table = prices or PriceTable.default()
    retried = select(Job.retry_of_id).where(Job.retry_of_id.is_not(None))
    query = select(Job).where(Job.status == JobStatus.FAILED.value, Job.id.not_in(retried))
    if campaign_id is not None:
        query = query.where(Job.campaign_id == campaign_id)
    if task_uuid is not None:
        query = query.where(Job.task_uuid == task_uuid)
    rows = []
    now = utcnow()
    asked: dict[int, Decimal] = defaultdict(Decimal)
    for old in session.scalars(query.order_by(Job.id).with_for_update()):
        new_uuid = str(uuid.uuid4())
        provider = provider_for(old.provider)
        task = provider.renewed(old.request, task_uuid=new_uuid)
        cost = provider.estimate(task, table)
        if old.campaign_id is not None:
            asked[old.campaign_id] += cost
        rows.append(
            {
                "campaign_id": old.campaign_id,
                "task_uuid": new_uuid,
                "provider": old.provider,
                "model": old.model,
                "request": task,
                "estimated_cost": cost,
                "variant": old.variant,
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
    for campaign in sorted(asked):  # one order, so that two retries cannot deadlock
        budgets.reserve(session, campaign_id=campaign, asked=asked[campaign])
    result = session.execute(insert(Job).returning(Job.id, sort_by_parameter_order=True), rows)
    return [row_id for (row_id,) in result]
