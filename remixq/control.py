"""Campaign control for people (the CLI) and programs (the API): cancel, pause, resume, retry.

Each takes the session and a campaign id, works in the caller's transaction and never commits;
jobs to hand to the broker are returned for the caller to publish after the commit. An id that
names no campaign raises `UnknownCampaign`.

Controls on a campaign with nothing left to control are no-ops, never errors, so that a program
may repeat them: cancelling a finished or already cancelled campaign cancels 0 jobs (and a
finished campaign is not marked cancelled), pausing one with no open job, or a cancelled one,
pauses nothing (False), resuming one that is not paused resumes nothing.

- cancel: pending, queued and submitting jobs become `cancelled` at once and are never
  submitted; a job the provider had accepted (submitted, or a submitting one it accepts) still
  lands, and its images and cost count (`remixq.states`). The campaign records `cancelled_at`.
- pause: the campaign's queued jobs go back to pending and nothing of it is claimed or relayed
  until a resume naming it; the account probe lifts only the pauses it made itself.
- resume: lifts either kind of pause; its pending and queued jobs are returned, to enqueue.
- retry: new attempts, with new taskUUIDs, for the campaign's failed jobs (`producing`).
- budget: a new budget (or none), never below what is reserved and spent already; a campaign
  its budget paused is resumed when the new one leaves room again (`remixq.budgets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from remixq import budgets, jobs, producing
from remixq.db import utcnow
from remixq.errors import UnknownCampaign
from remixq.models import Campaign, Job
from remixq.pricing import PriceTable
from remixq.states import OPEN, PausedBy

USER_PAUSE_REASON = "paused on request"


def _campaign(session: Session, campaign_id: int) -> Campaign:
    found = session.get(Campaign, campaign_id, populate_existing=True)
    if found is None:
        raise UnknownCampaign(campaign_id)
    return found


def _has_open_jobs(session: Session, campaign_id: int) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    Job.campaign_id == campaign_id,
                    Job.status.in_(sorted(status.value for status in OPEN)),
                )
            )
        )
    )


def cancel_campaign(session: Session, campaign_id: int) -> int:
    """Cancel the campaign: its jobs not yet submitted never will be. Returns how many jobs
    were cancelled (0 for a finished or already cancelled campaign: a no-op)."""
    campaign = _campaign(session, campaign_id)
    if not _has_open_jobs(session, campaign_id):
        return 0
    if campaign.cancelled_at is None:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.cancelled_at.is_(None))
            .values(cancelled_at=utcnow())
        )
    return jobs.cancel(session, campaign_id=campaign_id)


def pause_campaign(session: Session, campaign_id: int, *, reason: str = USER_PAUSE_REASON) -> bool:
    """Pause the campaign until a resume names it; True when it was newly paused (False: already
    paused on request, cancelled, or with no open job left)."""
    campaign = _campaign(session, campaign_id)
    if campaign.cancelled_at is not None or not _has_open_jobs(session, campaign_id):
        return False
    return jobs.pause_by_user(session, campaign_id=campaign_id, reason=reason)


@dataclass(frozen=True)
class Resumption:
    """A resume's answer: whether the campaign was paused, the jobs to hand to the broker after
    the commit, and whether the pause was the account's (then the workers' shared pause, the
    edge's, is to be lifted too)."""

    resumed: bool
    job_ids: list[int]
    account: bool


def resume_campaign(session: Session, campaign_id: int) -> Resumption:
    """Lift the campaign's pause, whoever made it."""
    _campaign(session, campaign_id)
    account = jobs.any_paused(session, campaign_id=campaign_id)
    resumed, job_ids = jobs.resume_campaigns(session, campaign_id=campaign_id)
    return Resumption(bool(resumed), job_ids, account and bool(resumed))


def retry_campaign(
    session: Session, campaign_id: int, *, prices: PriceTable | None = None
) -> list[int]:
    """New attempts for the campaign's failed jobs (each retried once); their ids, to hand to
    the broker after the commit. Their estimates (`prices`) are reserved against the
    campaign's budget: BudgetExceeded, nothing retried, when they do not fit."""
    _campaign(session, campaign_id)
    return producing.retry_failed(session, campaign_id=campaign_id, prices=prices)


@dataclass(frozen=True)
class BudgetSet:
    """A budget's change: the campaign's figures under it, and the jobs to hand to the broker
    when the change lifted the budget's pause."""

    state: budgets.BudgetState
    resumed: bool
    job_ids: list[int]


def set_failover(session: Session, campaign_id: int, failover: str | None) -> None:
    """Turn the campaign's failover on (a provider's name: remixq.failover) or off (None); from
    the next failover round on, its failed jobs are read with it."""
    _campaign(session, campaign_id).failover = failover


def set_budget(session: Session, campaign_id: int, budget: Decimal | None) -> BudgetSet:
    """Give the campaign `budget` (None: no budget), under its row lock; a budget below what is
    reserved and spent already is refused (BudgetExceeded). When the budget had paused the
    campaign and the new one covers what is committed, the pause is lifted."""
    campaign = _campaign(session, campaign_id)
    state = budgets.reserve(session, campaign_id=campaign_id, asked=Decimal(0), budget=budget)
    if campaign.paused_by != PausedBy.BUDGET.value:
        return BudgetSet(state, False, [])
    resumed, job_ids = jobs.resume_campaigns(session, campaign_id=campaign_id)
    return BudgetSet(state, bool(resumed), job_ids)
