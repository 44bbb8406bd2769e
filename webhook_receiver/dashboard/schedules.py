"""Schedules (remixq.schedules) as the dashboard shows them: which schedule a campaign came
from, and the schedules page (each schedule's next occurrences on its own clock, its past ones
with their campaigns, pause and resume). An installation without schedules shows none."""

from __future__ import annotations

import importlib
import itertools
import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq import models
from remixq.db import transaction, utcnow
from webhook_receiver.dashboard.blueprint import bp
from webhook_receiver.state import state

log = logging.getLogger("remixq.dashboard")
PAGE = 100  # schedules listed
NEXT = 5  # next occurrences shown per schedule
PAST = 10  # past occurrences shown per schedule


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def available() -> bool:
    return (
        hasattr(models, "Schedule")
        and hasattr(models.Campaign, "schedule_id")
        and _module("remixq.schedules.store") is not None
    )


def schedule_refs(db: Session, campaign_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The schedule each of these campaigns came from: {campaign id: {"id", "name"}}."""
    schedule: Any = getattr(models, "Schedule", None)
    campaign: Any = models.Campaign
    if not campaign_ids or schedule is None:
        return {}
    if not hasattr(campaign, "schedule_id"):
        return {}
    rows = db.execute(
        select(campaign.id, schedule.id, schedule.name)
        .join(schedule, schedule.id == campaign.schedule_id)
        .where(campaign.id.in_(list(campaign_ids)))
    )
    return {row[0]: {"id": row[1], "name": row[2]} for row in rows}


def _page_rows(db: Session, store: Any, cron: Any) -> list[dict[str, Any]]:
    now = utcnow()
    rows = []
    for view in store.views(db, limit=PAGE):
        clock = cron.parse_cron(view.cron, view.timezone)
        upcoming = (
            [] if view.paused_at is not None else list(itertools.islice(clock.after(now), NEXT))
        )
        schedule = store.find(db, view.name)
        rows.append(
            {
                "view": view,
                "next": [clock.local(at) for at in upcoming],
                "past": store.history(db, schedule, limit=PAST),
            }
        )
    return rows


@bp.get("/schedules")
def schedules() -> ResponseReturnValue:
    store, cron = _module("remixq.schedules.store"), _module("remixq.schedules.cron")
    if not available() or store is None or cron is None:
        return render_template("dashboard/schedules.html", available=False, schedules=[])
    with transaction(state(current_app).api_sessions) as db:
        rows = _page_rows(db, store, cron)
    return render_template("dashboard/schedules.html", available=True, schedules=rows)


def _control(schedule_id: int, action: str) -> ResponseReturnValue:
    store = _module("remixq.schedules.store")
    if not available() or store is None:
        abort(404, "this installation has no schedules")
    schedule: Any = getattr(models, "Schedule", None)
    with transaction(state(current_app).api_sessions) as db:
        name = db.scalar(select(schedule.name).where(schedule.id == schedule_id))
        if name is None:
            abort(404, f"no schedule has id {schedule_id}")
        changed = getattr(store, action)(db, name, now=utcnow())
    log.info(
        "dashboard schedule control",
        extra={"schedule": name, "control": action, "key_name": g.user.name},
    )
    done = {"pause": "Paused", "resume": "Resumed"}[action]
    flash(f"{done} schedule {name}." if changed else f"Schedule {name} was already so.", "info")
    return redirect(url_for("dashboard.schedules"))


@bp.post("/schedules/<int:schedule_id>/pause")
def pause_schedule(schedule_id: int) -> ResponseReturnValue:
    return _control(schedule_id, "pause")


@bp.post("/schedules/<int:schedule_id>/resume")
def resume_schedule(schedule_id: int) -> ResponseReturnValue:
    return _control(schedule_id, "resume")
