"""Submitting work: a campaign's jobs stored and then handed to the queue, and failed jobs
retried the same way.

The domain cannot import Celery, so the enqueue step is a callable the edge composes (the CLI
passes the worker's producer, `worker.app.enqueuer`). It is called only after the jobs are
committed; if it never runs (the process dies) or fails (the broker is unreachable), the jobs stay
pending and the relay enqueues them: a stored campaign is a submitted campaign.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from remixq import budgets, idempotency, jobs, producing
from remixq.config import Settings
from remixq.db import database, transaction
from remixq.errors import FieldError, InvalidInput, UnknownCampaign
from remixq.models import Campaign, Job
from remixq.pricing import PriceTable
from remixq.reports import find_campaign

# Publishes the committed jobs' ids and marks them queued, with sessions on their database.
Enqueue = Callable[[sessionmaker[Session], Sequence[int]], None]


@dataclass(frozen=True)
class Stored:
    """A committed campaign: its id, its new jobs' ids, and why they are not all on the broker
    yet (`broker_error`, None when every one was handed over); `replayed`: an earlier
    submission with the same idempotency key made it, and nothing new was stored."""

    campaign_id: int
    job_ids: list[int]
    broker_error: str | None = None
    replayed: bool = False


def store_and_enqueue(
    settings: Settings,
    *,
    name: str,
    source: str,
    new_jobs: Sequence[producing.NewJob],
    enqueue: Enqueue,
    content_sha256: str | None = None,
    budget: Decimal | budgets.Keep | budgets.Carried | None = budgets.KEEP,
    idempotency_key: str | None = None,
    request_sha256: str = "",
    failover: str | budgets.Keep | None = budgets.KEEP,
) -> Stored:
    """Store the jobs in campaign `name` (made if new) in one transaction, then enqueue them.

    `content_sha256`, the digest of the campaign file, is remembered on a new campaign; content
    already stored is refused (InvalidInput naming its campaign). Each job's estimate (the
    settings' price table) is reserved against the campaign's budget in that transaction
    (`budget`, when given, becomes the campaign's budget first, new or existing; a `Carried`
    one, a spec's, is a new campaign's budget but must be an existing one's already, else
    BudgetConflict): what does not fit is refused whole (BudgetExceeded). An
    `idempotency_key` (the command line's, as the API's Idempotency-Key) used before with the
    same `request_sha256` answers with the campaign it made (`replayed`, nothing stored); with
    another, it raises IdempotencyKeyReused. A failure to enqueue after the commit is not a
    failure of the submission: the jobs are stored, and the relay hands whatever is still
    pending to the broker when it is reachable, so it is reported, not raised
    (`broker_error`). `failover`, when given, becomes the campaign's failover provider (None:
    off; remixq.failover).
    """
    with database(settings) as sessions:
        with transaction(sessions) as session:
            claimed = None
            if idempotency_key is not None:
                claimed = idempotency.claim(
                    session, api_key_id=None, key=idempotency_key, digest=request_sha256
                )
                if claimed.campaign_id is not None:
                    return Stored(claimed.campaign_id, [], replayed=True)
            campaign = producing.get_or_create_campaign(
                session,
                name=name,
                source=source,
                content_sha256=content_sha256,
                budget_usd=_new_budget(budget),
            )
            if not isinstance(failover, budgets.Keep):
                campaign.failover = failover
            job_ids = producing.create_jobs(
                session,
                campaign=campaign,
                new_jobs=new_jobs,
                prices=PriceTable.configured(settings),
                budget=budget,
            )
            campaign_id = campaign.id
            if claimed is not None:
                idempotency.record(session, claimed=claimed, campaign_id=campaign_id)
        broker_error = _hand_over(enqueue, sessions, job_ids)
    return Stored(campaign_id, job_ids, broker_error)


def _new_budget(budget: Decimal | budgets.Keep | budgets.Carried | None) -> Decimal | None:
    """The budget a campaign made by `store_and_enqueue` starts with."""
    if isinstance(budget, budgets.Keep):
        return None
    return budget.amount if isinstance(budget, budgets.Carried) else budget


@dataclass(frozen=True)
class Retried:
    """New attempts, committed: their ids, and why they are not on the broker yet, if so."""

    job_ids: list[int]
    broker_error: str | None = None


def _hand_over(enqueue: Enqueue, sessions: sessionmaker[Session], job_ids: list[int]) -> str | None:
    """Enqueue committed jobs; the broker's error as one line when it could not take them.

    A failure here is not a failure of the command: the jobs are stored, and the relay hands
    whatever is still pending to the broker when it is reachable, so it is reported, not raised.
    """
    if not job_ids:
        return None
    try:
        enqueue(sessions, job_ids)
    # The broker's client raises its own tree (kombu, redis, SQLAlchemy for the embedded
    # broker), none of which the domain may import; whatever it was, the jobs are committed.
    # The caller reports it (a command line prints it: no log handler, no traceback).
    except Exception as exc:  # noqa: BLE001
        return _one_line(exc)
    return None


def retry_and_enqueue(
    settings: Settings,
    *,
    campaign: str | None,
    task_uuid: str | None,
    enqueue: Enqueue,
) -> Retried:
    """New attempts, with new taskUUIDs, for the failed jobs of `campaign` (id or name) or the
    one failed job `task_uuid`, committed, then enqueued (as `store_and_enqueue` does).

    A `task_uuid` that names no job, or a job that is not failed or already retried, is refused.
    """
    with database(settings) as sessions:
        with transaction(sessions) as session:
            campaign_id = _campaign_id(session, campaign)
            job_ids = producing.retry_failed(
                session,
                campaign_id=campaign_id,
                task_uuid=task_uuid,
                prices=PriceTable.configured(settings),
            )
            if task_uuid is not None and not job_ids:
                raise InvalidInput([_not_retried(session, task_uuid, campaign_id)])
        broker_error = _hand_over(enqueue, sessions, job_ids)
    return Retried(job_ids, broker_error)


@dataclass(frozen=True)
class Resumed:
    """Campaigns whose pause was lifted, their waiting jobs, and the broker's error if it could
    not take them (the relay hands them over later)."""

    campaign_ids: list[int]
    job_ids: list[int]
    broker_error: str | None = None


def resume_and_enqueue(
    settings: Settings,
    *,
    campaign: str | None,
    enqueue: Enqueue,
    lift_shared_pause: Callable[[], None],
) -> Resumed:
    """Lift the pause of `campaign` (id or name), whoever paused it, or of every campaign the
    account's refusal paused, once the account is usable again; then lift every worker's shared
    pause (`lift_shared_pause`, the edge's) if an account's pause was lifted, and hand the
    campaigns' waiting jobs to the broker. A pause a person asked for (`remixq pause`) is
    lifted only by naming its campaign."""
    with database(settings) as sessions:
        with transaction(sessions) as session:
            campaign_id = _campaign_id(session, campaign)
            account = jobs.any_paused(session, campaign_id=campaign_id)
            campaign_ids, job_ids = jobs.resume_campaigns(session, campaign_id=campaign_id)
        if campaign_ids and account:
            lift_shared_pause()
        broker_error = _hand_over(enqueue, sessions, job_ids)
    return Resumed(campaign_ids, job_ids, broker_error)


def _campaign_id(session: Session, ref: str | None) -> int | None:
    """The id of campaign `ref` (id or name), None for no ref; an unknown one is refused."""
    if ref is None:
        return None
    found = find_campaign(session, ref)
    if found is None:
        raise InvalidInput([no_campaign(ref)])
    return found.id


def _not_retried(session: Session, task_uuid: str, campaign_id: int | None) -> FieldError:
    """Why the job `task_uuid` got no new attempt."""
    job = session.scalar(select(Job).where(Job.task_uuid == task_uuid))
    if job is None or (campaign_id is not None and job.campaign_id != campaign_id):
        where = "" if campaign_id is None else " of that campaign"
        return FieldError("--job", task_uuid, f"the taskUUID of a job{where}; no job has it")
    retry = session.scalar(select(Job.task_uuid).where(Job.retry_of_id == job.id))
    if retry is not None:
        return FieldError(
            "--job", task_uuid, f"a failed job not retried yet; it was retried as {retry}"
        )
    return FieldError("--job", task_uuid, f"the taskUUID of a failed job; this one is {job.status}")


def no_campaign(ref: str | None) -> FieldError:
    """The refusal of a campaign reference that names no campaign."""
    return FieldError("CAMPAIGN", ref, "the id (#12 or 12) or name of an existing campaign")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CampaignNameTaken(ValueError):
    """A new campaign was asked for under a name another campaign has."""

    def __init__(self, name: str, campaign_id: int):
        self.name, self.campaign_id = name, campaign_id
        super().__init__(
            f"campaign name {name!r} is taken (campaign {campaign_id}); choose another name"
        )


@dataclass(frozen=True)
class Created:
    """A campaign made over the API (`replayed`: by an earlier request with the same
    idempotency key, and nothing new was stored), and the broker's error, if any."""

    campaign_id: int
    job_ids: list[int]
    replayed: bool = False
    broker_error: str | None = None


def create_and_enqueue(
    sessions: sessionmaker[Session],
    *,
    name: str,
    new_jobs: Sequence[producing.NewJob],
    enqueue: Enqueue | None,
    api_key_id: int,
    idempotency_key: str | None = None,
    request_sha256: str = "",
    budget_usd: Decimal | None = None,
    prices: PriceTable | None = None,
    failover: str | None = None,
) -> Created:
    """A new campaign `name` with `new_jobs`, made by API key `api_key_id`, committed with its
    idempotency key (if any) in one transaction, then enqueued as `store_and_enqueue` does
    (`enqueue` None: the relay hands the jobs over). The jobs' estimates (`prices`) are
    reserved against `budget_usd` (None: no budget) in that transaction: BudgetExceeded,
    nothing stored, when they do not fit.

    A name in use raises CampaignNameTaken; an idempotency key used before answers with the
    campaign it made (`replayed`), or raises IdempotencyKeyReused for another request body.
    """
    with transaction(sessions) as session:
        claimed = None
        if idempotency_key is not None:
            claimed = idempotency.claim(
                session, api_key_id=api_key_id, key=idempotency_key, digest=request_sha256
            )
            if claimed.campaign_id is not None:
                return Created(claimed.campaign_id, [], replayed=True)
        campaign_id = producing.create_campaign(
            session, name=name, source="api", api_key_id=api_key_id, budget_usd=budget_usd
        )
        if campaign_id is None:
            taken = session.scalar(select(Campaign.id).where(Campaign.name == name))
            raise CampaignNameTaken(name, taken or 0)
        campaign = session.get_one(Campaign, campaign_id)
        campaign.failover = failover  # remixq.failover (None: off)
        job_ids = producing.create_jobs(
            session, campaign=campaign, new_jobs=new_jobs, prices=prices
        )
        if claimed is not None:
            idempotency.record(session, claimed=claimed, campaign_id=campaign_id)
    return Created(campaign_id, job_ids, broker_error=hand_over(enqueue, sessions, job_ids))


class CampaignCancelled(ValueError):
    """Jobs were asked for in a cancelled campaign: none of its jobs is submitted any more, so
    new ones would wait forever (there is no un-cancel)."""

    def __init__(self, name: str, campaign_id: int):
        self.name, self.campaign_id = name, campaign_id
        super().__init__(
            f"campaign {name!r} (id {campaign_id}) is cancelled: no job is added to a cancelled"
            " campaign; create a new campaign for them"
        )


@dataclass(frozen=True)
class Added:
    """Jobs added to a campaign over the API (`replayed`: by an earlier request with the same
    idempotency key, and nothing new was stored), and the broker's error, if any."""

    campaign_id: int
    job_ids: list[int]
    replayed: bool = False
    broker_error: str | None = None


def add_and_enqueue(
    sessions: sessionmaker[Session],
    *,
    campaign_id: int,
    new_jobs: Sequence[producing.NewJob],
    enqueue: Enqueue | None,
    api_key_id: int,
    idempotency_key: str | None = None,
    request_sha256: str = "",
    budget: Decimal | budgets.Keep | budgets.Carried = budgets.KEEP,
    prices: PriceTable | None = None,
) -> Added:
    """Add `new_jobs` to campaign `campaign_id` in one transaction, then enqueue them (as
    `create_and_enqueue` does). Their estimates (`prices`) are reserved under the campaign's
    budget lock, as every producer's are (`budget`, when given, is its budget from now on; a
    `Carried` one, a body's, must be its budget already, else BudgetConflict): BudgetExceeded,
    nothing stored, when they do not fit.

    A campaign that does not exist raises UnknownCampaign, a cancelled one CampaignCancelled
    (read under the lock, so a cancel landing meanwhile either waits for the new jobs, and
    cancels them too, or is seen). An idempotency key used before with the same request
    answers `replayed` with nothing stored; with another request, IdempotencyKeyReused.
    """
    with transaction(sessions) as session:
        claimed = None
        if idempotency_key is not None:
            claimed = idempotency.claim(
                session, api_key_id=api_key_id, key=idempotency_key, digest=request_sha256
            )
            if claimed.campaign_id is not None:
                return Added(claimed.campaign_id, [], replayed=True)
        campaign = _open_campaign(session, campaign_id)
        job_ids = producing.create_jobs(
            session, campaign=campaign, new_jobs=new_jobs, prices=prices, budget=budget
        )
        if claimed is not None:
            idempotency.record(session, claimed=claimed, campaign_id=campaign_id)
    return Added(campaign_id, job_ids, broker_error=hand_over(enqueue, sessions, job_ids))


def _open_campaign(session: Session, campaign_id: int) -> Campaign:
    """The campaign, its row locked for this transaction (the budget's lock, which every
    producer and a cancel take); UnknownCampaign or CampaignCancelled otherwise."""
    row = session.execute(
        select(Campaign.name, Campaign.cancelled_at)
        .where(Campaign.id == campaign_id)
        .with_for_update(key_share=True)  # FOR NO KEY UPDATE, as remixq.budgets.lock
    ).one_or_none()
    if row is None:
        raise UnknownCampaign(campaign_id)
    if row.cancelled_at is not None:
        raise CampaignCancelled(row.name, campaign_id)
    return session.get_one(Campaign, campaign_id)


def hand_over(
    enqueue: Enqueue | None, sessions: sessionmaker[Session], job_ids: list[int]
) -> str | None:
    """Enqueue jobs an edge committed itself (the API's resume and retry), as the functions
    above do; `enqueue` None: nothing is published and the relay hands them over."""
    if enqueue is None:
        return None
    return _hand_over(enqueue, sessions, job_ids)
