"""Schedules (issue 17) as the dashboard shows them: which schedule a campaign came from, and
the schedules page. Until the schedules' tables exist in this installation, there is nothing to
show and the page says so."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq import models
from webhook_receiver.dashboard.blueprint import bp


def available() -> bool:
    return hasattr(models, "Schedule") and hasattr(models.Campaign, "schedule_id")


def schedule_refs(db: Session, campaign_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The schedule each of these campaigns came from: {campaign id: {"id", "name"}}."""
    if not campaign_ids or not available():
        return {}
    schedule: Any = models.Schedule  # type: ignore[attr-defined]
    campaign: Any = models.Campaign
    rows = db.execute(
        select(campaign.id, schedule.id, schedule.name)
        .join(schedule, schedule.id == campaign.schedule_id)
        .where(campaign.id.in_(list(campaign_ids)))
    )
    return {row[0]: {"id": row[1], "name": row[2]} for row in rows}


@bp.get("/schedules")
def schedules() -> ResponseReturnValue:
    return render_template("dashboard/schedules.html", available=available(), schedules=[])
