"""Domain rows and summaries (remixq.reports) as the API's typed bodies
(webhook_receiver.api.schemas)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq.models import ApiKey, Campaign, Image, Job
from remixq.provider_kinds import estimated_cost_providers
from remixq.reports import (
    CampaignSummary,
    asset_view,
    campaign_summaries,
    campaign_summary,
    money,
)
from webhook_receiver.api import schemas
from webhook_receiver.api.errors import ApiError


def not_found(campaign_id: int) -> ApiError:
    return ApiError(404, "not_found", f"no campaign has id {campaign_id}")


def _key_names(session: Session, campaign_ids: list[int]) -> dict[int, str]:
    if not campaign_ids:
        return {}
    rows = session.execute(
        select(Campaign.id, ApiKey.name)
        .join(ApiKey, Campaign.api_key_id == ApiKey.id)
        .where(Campaign.id.in_(campaign_ids))
    )
    return {row[0]: row[1] for row in rows.all()}


def _campaign(summary: CampaignSummary, key: str | None) -> schemas.Campaign:
    return schemas.Campaign(
        id=summary.id,
        name=summary.name,
        counts=summary.counts,
        images=summary.images,
        assets=summary.assets,
        cost_usd=money(summary.cost_usd),
        created_at=summary.created_at,
        finished_at=summary.finished_at,
        paused=summary.paused,
        pause_reason=summary.pause_reason,
        cancelled_at=summary.cancelled_at,
        api_key=key,
        paused_by=summary.paused_by,
        failover=summary.failover,
        **summary.budget_json(),
    )


def campaign(session: Session, campaign_id: int) -> schemas.Campaign:
    summary = campaign_summary(session, campaign_id)
    if summary is None:
        raise not_found(campaign_id)
    return _campaign(summary, _key_names(session, [campaign_id]).get(campaign_id))


def campaigns(session: Session, *, after_id: int | None, limit: int) -> list[schemas.Campaign]:
    summaries = campaign_summaries(session, after_id=after_id, limit=limit)
    keys = _key_names(session, [s.id for s in summaries])
    return [_campaign(summary, keys.get(summary.id)) for summary in summaries]


def require_campaign(session: Session, campaign_id: int) -> None:
    if session.scalar(select(Campaign.id).where(Campaign.id == campaign_id)) is None:
        raise not_found(campaign_id)


def job(row: Job) -> schemas.Job:
    error = None
    if row.error_code or row.error_message:
        error = schemas.JobError(code=row.error_code, message=row.error_message)
    return schemas.Job(
        id=row.id,
        task_uuid=str(row.task_uuid),
        status=row.status,
        provider=row.provider,
        model=row.model,
        results_expected=row.number_results,
        results_received=row.results_received,
        attempts=row.attempts,
        lost_answers=row.lost_answers,
        error=error,
        retry_of=row.retry_of_id,
        variant=row.variant,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def image(row: Image, of: Job) -> schemas.Image:
    return schemas.Image(
        id=row.id,
        image_uuid=str(row.image_uuid),
        image_url=row.image_url,
        seed=row.seed,
        nsfw=row.nsfw,
        cost_usd=money(row.cost) if row.cost is not None else None,
        cost_estimated=of.provider in estimated_cost_providers(),
        job_id=of.id,
        task_uuid=str(of.task_uuid),
        created_at=row.created_at,
        **asset_view(row),
        content_url=content_url(str(row.image_uuid)) if row.asset_status == "stored" else None,
    )


def content_url(image_uuid: str) -> str:
    return f"/api/v1/images/{image_uuid}/content"
