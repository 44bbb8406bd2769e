"""Domain rows as the API's typed bodies (webhook_receiver.api.schemas)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from remixq.apikeys import key_name
from remixq.models import Campaign, Image, Job
from remixq.reports import campaign_cost, campaign_progress, money
from webhook_receiver.api import schemas
from webhook_receiver.api.errors import ApiError


def not_found(campaign_id: int) -> ApiError:
    return ApiError(404, "not_found", f"no campaign has id {campaign_id}")


def campaign(session: Session, campaign_id: int) -> schemas.Campaign:
    row = session.get(Campaign, campaign_id)
    if row is None:
        raise not_found(campaign_id)
    counts = campaign_progress(session, campaign_id)
    images = session.scalar(
        select(func.count(Image.id)).join(Job).where(Job.campaign_id == campaign_id)
    )
    return schemas.Campaign(
        id=row.id,
        name=row.name,
        counts=dict(sorted(counts.items())),
        images=images or 0,
        cost_usd=money(campaign_cost(session, campaign_id)),
        created_at=row.created_at,
        finished_at=None,
        paused=row.paused_at is not None,
        pause_reason=row.pause_reason,
        cancelled_at=None,
        api_key=key_name(session, row.api_key_id),
    )
