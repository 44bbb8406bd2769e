"""Where each job stands: campaign summaries for the CLI and the API, derived from the rows."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from remixq.models import Campaign, Image, Job


def find_campaign(session: Session, ref: str | None) -> Campaign | None:
    """By id, by name, or (no ref) the newest campaign."""
    if ref is None:
        return session.scalar(select(Campaign).order_by(Campaign.id.desc()).limit(1))
    if ref.isdigit():
        found = session.get(Campaign, int(ref))
        if found is not None:
            return found
    return session.scalar(select(Campaign).where(Campaign.name == ref))


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


def job_view(job: Job) -> dict[str, Any]:
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
    jobs = session.scalars(
        select(Job)
        .where(Job.campaign_id == campaign.id)
        .order_by(Job.id)
        .options(selectinload(Job.images))
    ).all()
    counts = Counter(job.status for job in jobs)
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "cost_usd": money(campaign_cost(session, campaign.id)),
        "counts": dict(sorted(counts.items())),
        "images": sum(len(job.images) for job in jobs),
        # Set while the provider refuses the account: the jobs wait, pending, for a resume.
        "paused_at": campaign.paused_at.isoformat() if campaign.paused_at else None,
        "pause_reason": campaign.pause_reason,
        "jobs": [job_view(job) for job in jobs],
    }


def campaign_progress(session: Session, campaign_id: int) -> Counter[str]:
    rows = session.execute(
        select(Job.status, func.count()).where(Job.campaign_id == campaign_id).group_by(Job.status)
    )
    return Counter(dict(rows))
