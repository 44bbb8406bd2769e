"""A campaign's controls from the dashboard (POST forms, CSRF-checked, refused to a read-only
key): retry failed, cancel, pause, resume. Each runs in one transaction, hands what it made
ready to the broker after the commit (the relay does, if it cannot), and returns to the
campaign's page with a message."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app, flash, g, redirect, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from remixq.budgets import BudgetExceeded
from remixq.control import cancel_campaign, pause_campaign, resume_campaign, retry_campaign
from remixq.db import transaction
from remixq.errors import UnknownCampaign
from remixq.reports import campaign_summary
from remixq.submission import hand_over
from webhook_receiver.dashboard.blueprint import bp
from webhook_receiver.state import state

log = logging.getLogger("remixq.dashboard")


def _act(
    campaign_id: int, name: str, act: Callable[[Session], tuple[str, list[int], bool]]
) -> ResponseReturnValue:
    receiver = state(current_app)
    with transaction(receiver.api_sessions) as db:
        if campaign_summary(db, campaign_id) is None:
            raise UnknownCampaign(campaign_id)
        message, to_enqueue, account = act(db)
    broker_error = hand_over(receiver.enqueue, receiver.api_sessions, to_enqueue)
    if account and receiver.publisher is not None:
        receiver.publisher.lift_shared_pause()  # the account's pause held every worker too
    log.info(
        "dashboard control",
        extra={"campaign_id": campaign_id, "control": name, "key_name": g.user.name},
    )
    if broker_error is not None:
        message += " The broker is unreachable: the relay hands the jobs over when it is back."
    flash(message, "info")
    return redirect(url_for("dashboard.campaign", campaign_id=campaign_id))


@bp.post("/campaigns/<int:campaign_id>/retry")
def retry(campaign_id: int) -> ResponseReturnValue:
    def act(db: Session) -> tuple[str, list[int], bool]:
        job_ids = retry_campaign(db, campaign_id, prices=state(current_app).prices)
        return f"Retried {len(job_ids)} failed job(s) with new attempts.", job_ids, False

    try:
        return _act(campaign_id, "retry", act)
    except BudgetExceeded as exc:
        flash(f"Nothing retried: {exc}", "error")
        return redirect(url_for("dashboard.campaign", campaign_id=campaign_id))


@bp.post("/campaigns/<int:campaign_id>/cancel")
def cancel(campaign_id: int) -> ResponseReturnValue:
    def act(db: Session) -> tuple[str, list[int], bool]:
        count = cancel_campaign(db, campaign_id)
        return f"Cancelled {count} job(s) not yet submitted.", [], False

    return _act(campaign_id, "cancel", act)


@bp.post("/campaigns/<int:campaign_id>/pause")
def pause(campaign_id: int) -> ResponseReturnValue:
    def act(db: Session) -> tuple[str, list[int], bool]:
        paused = pause_campaign(db, campaign_id)
        return ("Paused." if paused else "Nothing to pause."), [], False

    return _act(campaign_id, "pause", act)


@bp.post("/campaigns/<int:campaign_id>/resume")
def resume(campaign_id: int) -> ResponseReturnValue:
    def act(db: Session) -> tuple[str, list[int], bool]:
        resumed = resume_campaign(db, campaign_id)
        message = "Resumed." if resumed.resumed else "It was not paused."
        return message, resumed.job_ids, resumed.account

    return _act(campaign_id, "resume", act)
