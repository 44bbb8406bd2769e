"""Where each job stands: campaign summaries for the CLI and the API, derived from the rows.

Everything here is cheap on a 100,000-job campaign: totals are SQL aggregates (GROUP BY), lists
are keyset pages on ids backed by the jobs' (campaign_id, id) and (campaign_id, status, id)
indexes, and the export and the full report are streamed in such pages, never loaded whole.

"Latest attempts" are the jobs no retry replaced: counts, image counts and the outcome describe
them; the cost is everything the campaign cost, superseded attempts included (they were paid).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Subquery, and_, case, exists, func, select, tuple_
from sqlalchemy.orm import Session, aliased, selectinload

from remixq.budgets import Spend, campaign_spend, usd
from remixq.db import json_dumps
from remixq.errors import FieldError, InvalidInput
from remixq.models import Campaign, Image, Job
from remixq.provider_kinds import estimated_cost_providers
from remixq.providers import DEFAULT_PROVIDER, provider_for
from remixq.states import OPEN, AssetStatus, JobStatus

PAGE_MAX = 1000  # the most items one page may ask for


def find_campaign(session: Session, ref: str | None) -> Campaign | None:
    """The campaign `ref` names; (no ref) the newest.

    One rule, so that a campaign named "123" is never shadowed by campaign id 123: `#123` is
    always the id; otherwise an exact name wins, and a number that names no campaign is an id.
    """
    if ref is None:
        return session.scalar(select(Campaign).order_by(Campaign.id.desc()).limit(1))
    if ref.startswith("#") and ref[1:].isdigit():
        return session.get(Campaign, int(ref[1:]))
    named = session.scalar(select(Campaign).where(Campaign.name == ref))
    if named is not None or not ref.isdigit():
        return named
    return session.get(Campaign, int(ref))


money = usd  # a USD amount as an exact decimal string, without trailing zeros past the cent


def campaign_cost(session: Session, campaign_id: int) -> Decimal:
    total = session.scalar(
        select(func.sum(Image.cost))
        .join(Job, Image.job_id == Job.id)
        .where(Job.campaign_id == campaign_id)
    )
    return total or Decimal(0)


def job_view(
    job: Job, *, retry_of: str | None = None, retried_as: str | None = None
) -> dict[str, Any]:
    """One job (one attempt) for people and machines; `retry_of` and `retried_as` link an
    attempt to the one it replaced and to its own retry (taskUUIDs)."""
    error = None
    if job.error_code and job.status == "failed":
        error = {"code": job.error_code, "message": job.error_message}
    estimated = job.provider in estimated_cost_providers()
    return {
        "task_uuid": str(job.task_uuid),
        "status": job.status,
        "provider": job.provider,
        "model": job.model,
        "results_expected": job.number_results,
        "results_received": job.results_received,
        "attempts": job.attempts,
        # Calls whose answer was lost (a synchronous provider's: each may have been charged).
        "lost_answers": job.lost_answers,
        "error": error,
        "retry_of": retry_of,
        "retried_as": retried_as,
        # remixq.failover: "failed_over" (`retried_as` is its re-run through the campaign's
        # failover provider; a late result of its own is recorded, not counted in the budget),
        # "refused" or "runware_has_it", and why; None when not considered.
        "failover": (
            None
            if job.failover_state is None
            else {"state": job.failover_state, "reason": job.failover_reason}
        ),
        # The axis values of the spec's matrix that made it ({"job": i}: the spec's explicit
        # job i), None for a request of a plain file.
        "variant": job.variant,
        "cost_usd": money(sum((i.cost or Decimal(0) for i in job.images), Decimal(0))),
        # The price table's, not the provider's: its answers carry no cost.
        "cost_estimated": estimated,
        "images": [
            {
                "image_uuid": str(i.image_uuid),
                "image_url": i.image_url,
                "seed": i.seed,
                "nsfw": i.nsfw,
                "cost": money(i.cost) if i.cost is not None else None,
                "cost_estimated": estimated,
                **asset_view(i),
            }
            for i in job.images
        ],
    }


def asset_view(image: Image) -> dict[str, Any]:
    """An image's durable copy (remixq.assets): its status, the reason of a failure or refusal
    (or of a pending one's last failed try), and what the stored bytes are."""
    return {
        "asset_status": image.asset_status,
        "asset_reason": image.asset_reason,
        "sha256": image.sha256,
        "size_bytes": image.size_bytes,
        "content_type": image.content_type,
        "width": image.width,
        "height": image.height,
    }


def campaign_report(session: Session, campaign: Campaign) -> dict[str, Any]:
    """The campaign's outcome: `jobs`, `counts`, `images` and `outcome` describe the latest
    attempt of each job (a failed job that was retried counts as its retry); the attempts a
    retry superseded are listed apart, in `superseded`, each naming its retry. `cost_usd` is
    everything the campaign cost, superseded attempts included: they were paid for.

    Every job is in the answer: on a large campaign, `report_head` and `job_views` give the same
    in constant memory (`remixq status` streams them)."""
    return {
        **report_head(session, campaign),
        "jobs": list(job_views(session, campaign.id)),
        "superseded": list(job_views(session, campaign.id, superseded=True)),
    }


def report_head(session: Session, campaign: Campaign) -> dict[str, Any]:
    """`campaign_report` without its job lists, from aggregates (a constant number of queries)."""
    summary = campaign_summary(session, campaign.id)
    assert summary is not None  # the caller holds the campaign
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "outcome": summary.outcome,
        "cost_usd": money(summary.cost_usd),
        "counts": summary.counts,
        "images": summary.images,
        "assets": summary.assets,
        # Set while the provider refuses the account (paused_by "account": the jobs wait,
        # pending, for a resume) or since a person paused the campaign (paused_by "user").
        "paused_at": _iso(summary.paused_at),
        "pause_reason": summary.pause_reason,
        "paused_by": summary.paused_by,
        "cancelled_at": _iso(summary.cancelled_at),
        "superseded_count": summary.superseded,
        **summary.budget_json(),
    }


def superseded_attempt() -> ColumnElement[bool]:
    """True for a job a retry replaced (the retry names it): a superseded attempt."""
    retry = aliased(Job)
    return exists().where(retry.retry_of_id == Job.id)


def _superseded_ids() -> Subquery:
    """The ids of the superseded attempts, once each: outer-joined to the jobs (by their index
    on retry_of_id) where an aggregate over many rows asks which are superseded. PostgreSQL
    prices `superseded_attempt()` as one subquery per row (several per image row), which made
    a large campaign's totals look dear enough to be JIT-compiled, which cost more than the
    work itself (docs/benchmarks.md, the dashboard on a 100,000-job campaign)."""
    retry = aliased(Job)
    return (
        select(retry.retry_of_id.label("job_id"))
        .where(retry.retry_of_id.is_not(None))
        .distinct()
        .subquery("superseded")
    )


def job_views(
    session: Session, campaign_id: int, *, superseded: bool = False, batch: int = 500
) -> Iterator[dict[str, Any]]:
    """The campaign's latest attempts (or, `superseded`, the attempts a retry replaced) as
    `job_view`s, by id, read in keyset batches: at most `batch` jobs (and their images) are held
    at once."""
    after = 0
    while True:
        page = session.scalars(
            select(Job)
            .where(Job.campaign_id == campaign_id, Job.id > after)
            .where(superseded_attempt() if superseded else ~superseded_attempt())
            .order_by(Job.id)
            .limit(batch)
            .options(selectinload(Job.images))
        ).all()
        if not page:
            return
        links = _retry_links(session, page, superseded=superseded)
        for job in page:
            if superseded:
                yield job_view(job, retried_as=links.get(job.id))
            else:
                parent = links.get(job.retry_of_id) if job.retry_of_id is not None else None
                yield job_view(job, retry_of=parent)
        # The session's identity map holds its objects weakly: a page let go is freed.
        after = page[-1].id


def _retry_links(
    session: Session, page: Sequence[Job], *, superseded: bool
) -> dict[int | None, str]:
    """For latest attempts, the taskUUID of each parent (by the parent's id); for superseded
    ones, the taskUUID of each one's retry (by the superseded job's id)."""
    if superseded:
        rows = session.execute(
            select(Job.retry_of_id, Job.task_uuid).where(
                Job.retry_of_id.in_([job.id for job in page])
            )
        )
    else:
        parents = [job.retry_of_id for job in page if job.retry_of_id is not None]
        if not parents:
            return {}
        rows = session.execute(select(Job.id, Job.task_uuid).where(Job.id.in_(parents)))
    return {key: str(task_uuid) for key, task_uuid in rows}


def outcome(counts: Counter[str] | dict[str, int]) -> str:
    """`running` while a latest attempt is open, then `failed` if one failed, `cancelled` if one
    was cancelled, else `completed`."""
    if any(counts.get(status, 0) > 0 for status in OPEN):
        return "running"
    if counts.get(JobStatus.FAILED, 0):
        return "failed"
    return "cancelled" if counts.get(JobStatus.CANCELLED, 0) else "completed"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class CampaignSummary:
    """A campaign at a glance: jobs by status and images (latest attempts), what it cost (all
    attempts), when it started and finished (None while a latest attempt is open), whether it
    is paused (by whom and why) and when it was cancelled."""

    id: int
    name: str
    counts: dict[str, int]
    images: int
    cost_usd: Decimal
    created_at: datetime
    finished_at: datetime | None
    paused: bool
    pause_reason: str | None
    cancelled_at: datetime | None
    paused_by: str | None = None  # "account", "user" or "budget" (`remixq.states.PausedBy`)
    paused_at: datetime | None = None
    superseded: int = 0  # attempts a retry replaced, outside `counts`
    budget_usd: Decimal | None = None  # None: no budget
    failover: str | None = None  # the failover provider (remixq.failover); None: off
    # Estimated, reserved (open jobs), spent and overrun USD, every attempt (`remixq.budgets`).
    spend: Spend = field(default_factory=Spend)
    # The images' copies by asset status (latest attempts, as `images`): remixq.assets.
    assets: dict[str, int] = field(default_factory=dict)

    @property
    def budget_left(self) -> Decimal | None:
        """What is left of the budget for new jobs (None: no budget; negative: overrun past
        it)."""
        return None if self.budget_usd is None else self.budget_usd - self.spend.committed

    @property
    def jobs(self) -> int:
        return sum(self.counts.values())

    @property
    def outcome(self) -> str:
        return outcome(self.counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "outcome": self.outcome,
            "jobs": self.jobs,
            "counts": dict(self.counts),
            "images": self.images,
            "assets": dict(self.assets),
            "cost_usd": money(self.cost_usd),
            "created_at": self.created_at.isoformat(),
            "finished_at": _iso(self.finished_at),
            "paused": self.paused,
            "paused_at": _iso(self.paused_at),
            "paused_by": self.paused_by,
            "pause_reason": self.pause_reason,
            "cancelled_at": _iso(self.cancelled_at),
            "failover": self.failover,
            **self.budget_json(),
        }

    def budget_json(self) -> dict[str, Any]:
        """The budget and spend fields of a summary's JSON (decimal strings; budget null when
        there is none)."""
        left = self.budget_left
        return {
            "budget_usd": None if self.budget_usd is None else usd(self.budget_usd),
            "estimated_usd": usd(self.spend.estimated),
            "reserved_usd": usd(self.spend.reserved),
            "spent_usd": usd(self.spend.spent),
            "overrun_usd": usd(self.spend.overrun),
            "spent_estimated_usd": usd(self.spend.spent_estimated),
            "budget_left_usd": None if left is None else usd(left),
        }


def campaign_summaries(
    session: Session,
    *,
    after_id: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[CampaignSummary]:
    """The campaigns by ascending id, after `after_id` (`newest_first`: by descending id, below
    `after_id`), at most `limit`: four queries whatever their number and size (the campaigns,
    their jobs by status, their images and cost, their estimates, reservations and
    overruns)."""
    query = select(Campaign).order_by(Campaign.id.desc() if newest_first else Campaign.id)
    if after_id is not None:
        query = query.where(Campaign.id < after_id if newest_first else Campaign.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    campaigns = session.scalars(query).all()
    if not campaigns:
        return []
    ids = [c.id for c in campaigns]
    in_range = and_(Job.campaign_id >= min(ids), Job.campaign_id <= max(ids))
    return _summaries(session, campaigns, in_range)


def summaries_of(session: Session, campaign_ids: Sequence[int]) -> dict[int, CampaignSummary]:
    """The summaries of these campaigns (a schedule's history), by id; unknown ids have none."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    campaigns = session.scalars(select(Campaign).where(Campaign.id.in_(ids))).all()
    if not campaigns:
        return {}
    return {s.id: s for s in _summaries(session, campaigns, Job.campaign_id.in_(ids))}


def campaign_summary(session: Session, campaign_id: int) -> CampaignSummary | None:
    """One campaign's summary; None when no campaign has that id."""
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None:
        return None
    return _summaries(session, [campaign], Job.campaign_id == campaign_id)[0]


def _summaries(
    session: Session, campaigns: Sequence[Campaign], jobs_of: ColumnElement[bool]
) -> list[CampaignSummary]:
    superseded_ids = _superseded_ids()
    retried = superseded_ids.c.job_id.is_not(None)
    counts: dict[int, dict[str, int]] = {c.id: {} for c in campaigns}
    superseded: Counter[int] = Counter()
    last_finish: dict[int, datetime] = {}
    rows = session.execute(
        select(Job.campaign_id, Job.status, retried, func.count(), func.max(Job.finished_at))
        .outerjoin(superseded_ids, superseded_ids.c.job_id == Job.id)
        .where(jobs_of)
        .group_by(Job.campaign_id, Job.status, retried)
    )
    for campaign_id, status, was_retried, count, finished in rows:
        if campaign_id not in counts:
            continue
        if was_retried:
            superseded[campaign_id] += count
        else:
            counts[campaign_id][status] = count
        if finished is not None and (
            campaign_id not in last_finish or finished > last_finish[campaign_id]
        ):
            last_finish[campaign_id] = finished
    images: dict[int | None, tuple[int, Decimal]] = {}
    assets: dict[int | None, dict[str, int]] = {}
    totals = session.execute(
        select(
            Job.campaign_id,
            func.count(case((~retried, Image.id))),
            func.sum(Image.cost),
            *(
                func.count(case((and_(~retried, Image.asset_status == status.value), Image.id)))
                for status in AssetStatus
            ),
        )
        .join(Job, Image.job_id == Job.id)
        .outerjoin(superseded_ids, superseded_ids.c.job_id == Job.id)
        .where(jobs_of)
        .group_by(Job.campaign_id)
    )
    for campaign_id, count, cost, *copies in totals:
        images[campaign_id] = (int(count), cost or Decimal(0))
        assets[campaign_id] = {
            status.value: int(n) for status, n in zip(AssetStatus, copies, strict=True) if n
        }
    spends = campaign_spend(session, [c.id for c in campaigns])
    summaries = []
    for campaign in campaigns:
        by_status = dict(sorted(counts[campaign.id].items()))
        settled = by_status and not any(by_status.get(status, 0) for status in OPEN)
        ends = [t for t in (last_finish.get(campaign.id), campaign.cancelled_at) if t is not None]
        count, cost = images.get(campaign.id, (0, Decimal(0)))
        summaries.append(
            CampaignSummary(
                id=campaign.id,
                name=campaign.name,
                counts=by_status,
                images=count,
                cost_usd=cost,
                created_at=campaign.created_at,
                finished_at=max(ends) if settled and ends else None,
                paused=campaign.paused_at is not None,
                pause_reason=campaign.pause_reason,
                cancelled_at=campaign.cancelled_at,
                paused_by=campaign.paused_by,
                paused_at=campaign.paused_at,
                superseded=superseded[campaign.id],
                budget_usd=campaign.budget_usd,
                failover=campaign.failover,
                spend=spends.get(campaign.id, Spend()),
                assets=assets.get(campaign.id, {}),
            )
        )
    return summaries


def _page_size(limit: int) -> int:
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput([FieldError("limit", limit, f"a whole number from 1 to {PAGE_MAX}")])
    return limit


def jobs_page(
    session: Session,
    campaign_id: int,
    *,
    status: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[Job]:
    """Up to `limit` of the campaign's jobs (every attempt; of one `status` if given) with ids
    above `after_id`, by id: a keyset page, stable under inserts (a new job has a higher id)."""
    query = select(Job).where(Job.campaign_id == campaign_id)
    if status is not None:
        known = [s.value for s in JobStatus]
        if status not in known:
            raise InvalidInput([FieldError("status", status, f"one of {', '.join(known)}")])
        query = query.where(Job.status == status)
    if after_id is not None:
        query = query.where(Job.id > after_id)
    return list(session.scalars(query.order_by(Job.id).limit(_page_size(limit))))


def _after(job_id: int, image_id: int) -> ColumnElement[bool]:
    """Images after (job_id, image_id) in (job id, image id) order; the plain bounds on both
    ids let each index scan start at the cursor instead of at the campaign's first row."""
    return and_(
        Job.id >= job_id,
        Image.job_id >= job_id,
        tuple_(Image.job_id, Image.id) > tuple_(job_id, image_id),
    )


def images_page(
    session: Session, campaign_id: int, *, after_id: int | None = None, limit: int = 100
) -> list[tuple[Image, Job]]:
    """Up to `limit` of the campaign's images (of every attempt), each with its job, after the
    image `after_id`: a keyset page ordered by (job id, image id), walked along the jobs'
    (campaign_id, id) index. An image stored later for a job already paged past is not seen;
    no image is ever seen twice or skipped among those stored before the first page."""
    query = (
        select(Image, Job).join(Job, Image.job_id == Job.id).where(Job.campaign_id == campaign_id)
    )
    if after_id is not None:
        after_job = session.scalar(select(Image.job_id).where(Image.id == after_id))
        if after_job is None:
            raise InvalidInput([FieldError("after", after_id, "the id of a stored image")])
        query = query.where(_after(after_job, after_id))
    query = query.order_by(Job.id, Image.id).limit(_page_size(limit))
    return [(image, job) for image, job in session.execute(query)]


EXPORT_FIELDS = (
    "campaign_id",
    "campaign",
    "job_id",
    "task_uuid",
    "status",
    "provider",
    "model",
    "prompt",
    "parameters",
    "variant",
    "image_uuid",
    "image_url",
    "seed",
    "nsfw",
    "cost_usd",
    "cost_estimated",
    "asset_status",
    "asset_reason",
    "sha256",
    "size_bytes",
    "content_type",
    "width",
    "height",
)


def export_rows(
    session: Session, campaign_id: int, *, batch: int = 1000, storage_keys: bool = False
) -> Iterator[dict[str, Any]]:
    """One dict per stored image of the campaign (every attempt: each was paid for), with
    `EXPORT_FIELDS`: the campaign, the job and its taskUUID, its provider and model, the prompt
    and the other parameters of the request (read where its provider keeps them), its variant
    (a spec's axis values, or None), the image's UUID, URL, seed, NSFW flag and cost (a decimal
    string; `cost_estimated` when its provider reports none and the cost is the price table's
    estimate), and its asset's status, reason,
    SHA-256, size, content type and dimensions (`storage_keys`: also where the bytes are, for
    `remixq export --images`). Read in keyset batches of `batch`
    images as plain rows: memory stays constant whatever the campaign's size. An unknown
    campaign raises `UnknownCampaign`."""
    from remixq.errors import UnknownCampaign

    name = session.scalar(select(Campaign.name).where(Campaign.id == campaign_id))
    if name is None:
        raise UnknownCampaign(campaign_id)
    columns = (
        Job.id,
        Job.task_uuid,
        Job.status,
        Job.model,
        Job.request,
        Image.id,
        Job.variant,
        Image.image_uuid,
        Image.image_url,
        Image.seed,
        Image.nsfw,
        Image.cost,
        Image.asset_status,
        Image.asset_reason,
        Image.sha256,
        Image.size_bytes,
        Image.content_type,
        Image.width,
        Image.height,
        Image.storage_key,
        Job.provider,
    )
    after: tuple[int, int] | None = None
    while True:
        query = (
            select(*columns).join(Job, Image.job_id == Job.id).where(Job.campaign_id == campaign_id)
        )
        if after is not None:
            query = query.where(_after(*after))
        rows = session.execute(query.order_by(Job.id, Image.id).limit(batch)).all()
        if not rows:
            return
        for row in rows:
            request = row[4] or {}
            provider = provider_for(row[20] or DEFAULT_PROVIDER)
            yield {
                "campaign_id": campaign_id,
                "campaign": name,
                "job_id": row[0],
                "task_uuid": str(row[1]),
                "status": row[2],
                "provider": provider.name,
                "model": row[3],
                "prompt": provider.prompt_of(request),
                "parameters": provider.parameters_of(request),
                "variant": row[6],
                "image_uuid": str(row[7]),
                "image_url": row[8],
                "seed": row[9],
                "nsfw": row[10],
                "cost_usd": money(row[11]) if row[11] is not None else None,
                # A provider that reports no cost (Ideogram's own API): the price table's.
                "cost_estimated": not provider.reports_cost,
                **dict(zip(EXPORT_FIELDS[-7:], row[12:19], strict=True)),
                **({"storage_key": row[19]} if storage_keys else {}),
            }
        after = (rows[-1][0], rows[-1][5])
        del rows


def export_csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """An `export_rows` row as a CSV row holds it: parameters and variant as JSON text, the
    NSFW flag as true/false (empty when unknown); the columns are `EXPORT_FIELDS`."""
    return {
        **row,
        "parameters": json_dumps(row["parameters"]),
        "variant": "" if row["variant"] is None else json_dumps(row["variant"]),
        "nsfw": "" if row["nsfw"] is None else str(row["nsfw"]).lower(),
        "cost_estimated": str(row["cost_estimated"]).lower(),
    }


def campaign_progress(session: Session, campaign_id: int) -> Counter[str]:
    """Jobs per status, latest attempts only (as `campaign_report` counts them)."""
    retried = select(Job.retry_of_id).where(
        Job.campaign_id == campaign_id, Job.retry_of_id.is_not(None)
    )
    rows = session.execute(
        select(Job.status, func.count())
        .where(Job.campaign_id == campaign_id, Job.id.not_in(retried))
        .group_by(Job.status)
    )
    return Counter(dict(rows.all()))
