"""Where each job stands: campaign summaries for the CLI and the API, derived from the rows."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from remixq.models import Campaign, Image, Job
from remixq.states import OPEN, JobStatus


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


def money(value: Decimal | None) -> str:
    """A USD amount as an exact decimal string, without trailing zeros past the cent."""
    value = value or Decimal(0)
    text = format(value.normalize(), "f")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


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
    return {
        "task_uuid": str(job.task_uuid),
        "status": job.status,
        "model": job.model,
        "results_expected": job.number_results,
        "results_received": job.results_received,
        "attempts": job.attempts,
        "error": error,
        "retry_of": retry_of,
        "retried_as": retried_as,
        "cost_usd": money(sum((i.cost or Decimal(0) for i in job.images), Decimal(0))),
        "images": [
            {
                "image_uuid": str(i.image_uuid),
                "image_url": i.image_url,
                "seed": i.seed,
                "nsfw": i.nsfw,
                "cost": money(i.cost) if i.cost is not None else None,
            }
            for i in job.images
        ],
    }


def campaign_report(session: Session, campaign: Campaign) -> dict[str, Any]:
    """The campaign's outcome: `jobs`, `counts`, `images` and `outcome` describe the latest
    attempt of each job (a failed job that was retried counts as its retry); the attempts a
    retry superseded are listed apart, in `superseded`, each naming its retry. `cost_usd` is
    everything the campaign cost, superseded attempts included: they were paid for."""
    rows = session.scalars(
        select(Job)
        .where(Job.campaign_id == campaign.id)
        .order_by(Job.id)
        .options(selectinload(Job.images))
    ).all()
    by_id = {job.id: job for job in rows}
    retried_as = {job.retry_of_id: job for job in rows if job.retry_of_id is not None}
    latest: list[dict[str, Any]] = []
    superseded: list[dict[str, Any]] = []
    for job in rows:
        parent = by_id.get(job.retry_of_id) if job.retry_of_id is not None else None
        retry = retried_as.get(job.id)
        view = job_view(
            job,
            retry_of=str(parent.task_uuid) if parent else None,
            retried_as=str(retry.task_uuid) if retry else None,
        )
        (superseded if retry else latest).append(view)
    counts = Counter(view["status"] for view in latest)
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "outcome": outcome(counts),
        "cost_usd": money(campaign_cost(session, campaign.id)),
        "counts": dict(sorted(counts.items())),
        "images": sum(len(view["images"]) for view in latest),
        # Set while the provider refuses the account: the jobs wait, pending, for a resume.
        "paused_at": campaign.paused_at.isoformat() if campaign.paused_at else None,
        "pause_reason": campaign.pause_reason,
        "jobs": latest,
        "superseded": superseded,
    }


def outcome(counts: Counter[str]) -> str:
    """`running` while a latest attempt is open, then `failed` if one failed, else `completed`."""
    if any(counts[status] > 0 for status in OPEN):
        return "running"
    return "failed" if counts[JobStatus.FAILED] else "completed"


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
