"""Campaign control on both backends: cancel, pause, resume and retry (`remixq.control`), and what
the claim, the relay, the worker's records and ingestion then do with the campaign's jobs."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from remixq import jobs
from remixq.control import cancel_campaign, pause_campaign, resume_campaign, retry_campaign
from remixq.errors import UnknownCampaign
from remixq.ingest import ingest
from remixq.models import Campaign, Image, Job
from remixq.reconcile import expire_old, take_due
from remixq.relay import take_lost_jobs
from remixq.reports import campaign_summary
from tests.support.factories import make_campaign

LEASE = timedelta(minutes=5)


def statuses(session: Session, campaign: Campaign) -> list[str]:
    return list(
        session.scalars(select(Job.status).where(Job.campaign_id == campaign.id).order_by(Job.id))
    )


def job_ids(session: Session, campaign: Campaign) -> list[int]:
    return list(
        session.scalars(select(Job.id).where(Job.campaign_id == campaign.id).order_by(Job.id))
    )


def webhook(job: Job, cost: str = "0.04") -> bytes:
    item = {
        "taskType": "imageInference",
        "taskUUID": job.task_uuid,
        "imageUUID": str(uuid.uuid4()),
        "imageURL": "https://im.example/late.jpg",
        "seed": 7,
        "cost": float(cost),
    }
    return json.dumps({"data": [item]}).encode()


def age(session: Session, campaign: Campaign) -> None:
    """Make the campaign's jobs look long forgotten, as the relay finds lost ones."""
    old = jobs.utcnow() - timedelta(days=1)
    session.execute(
        update(Job)
        .where(Job.campaign_id == campaign.id)
        .values(updated_at=old, claimed_at=old, enqueued_at=old)
    )


def relay(session: Session, campaign: Campaign) -> list[int]:
    """What the relay would publish again of `campaign`'s jobs (the database may hold other
    tests' committed jobs: the batch takes them all)."""
    ids = set(job_ids(session, campaign))
    lost = take_lost_jobs(
        session,
        pending_grace=timedelta(seconds=1),
        queued_stale=timedelta(seconds=1),
        claim_lease=timedelta(seconds=1),
        broker_messages=lambda: 0,
        batch=100_000,
    )
    return [job_id for job_id in lost if job_id in ids]


def test_cancel_stops_every_unsubmitted_job_and_leaves_the_rest(session: Session) -> None:
    campaign = make_campaign(
        session, "pending", "queued", "submitting", "submitted", "completed", "failed"
    )

    assert cancel_campaign(session, campaign.id) == 3

    assert statuses(session, campaign) == [
        "cancelled", "cancelled", "cancelled", "submitted", "completed", "failed"
    ]  # fmt: skip
    summary = campaign_summary(session, campaign.id)
    assert summary is not None and summary.cancelled_at is not None
    assert summary.outcome == "running"  # the submitted job still lands
    assert cancel_campaign(session, campaign.id) == 0  # again: a no-op


def test_nothing_claims_relays_reconciles_or_requeues_a_cancelled_job(session: Session) -> None:
    campaign = make_campaign(session, "pending", "queued", "submitting")
    ids = job_ids(session, campaign)
    cancel_campaign(session, campaign.id)
    age(session, campaign)

    assert jobs.claim(session, job_ids=ids, lease=LEASE) == []
    assert relay(session, campaign) == []
    due = take_due(session, reconcile_after=timedelta(seconds=1), cap=LEASE, limit=1000)
    assert not {d.job_id for d in due} & set(ids)
    expire_old(session, max_age=timedelta(seconds=1))
    jobs.mark_enqueued(session, job_ids=ids)
    jobs.release(session, job_ids=ids, code="timeout", message="t", retry_at=jobs.utcnow())
    jobs.hold(session, job_ids=ids)
    jobs.fail(session, job_ids=ids, code="invalidModel", message="refused")
    session.expire_all()
    assert statuses(session, campaign) == ["cancelled"] * 3


def test_a_job_accepted_while_the_cancel_landed_lands_and_its_cost_counts(
    session: Session,
) -> None:
    campaign = make_campaign(session, "submitting", "submitting")
    accepted, refused = session.scalars(
        select(Job).where(Job.campaign_id == campaign.id).order_by(Job.id)
    ).all()
    assert cancel_campaign(session, campaign.id) == 2

    # The worker's answer comes back after the cancel: one accepted, one refused.
    assert jobs.record_accepted(session, job_ids=[accepted.id]) == 1
    jobs.fail(session, job_ids=[refused.id], code="invalidPrompt", message="no")
    outcome = ingest(session, body=webhook(accepted), expected_task_uuid=accepted.task_uuid)

    assert outcome.images_stored == 1 and outcome.message == ""
    session.expire_all()
    assert statuses(session, campaign) == ["completed", "cancelled"]
    summary = campaign_summary(session, campaign.id)
    assert summary is not None
    assert (summary.images, summary.cost_usd) == (1, Decimal("0.04"))
    assert summary.outcome == "cancelled" and summary.finished_at is not None


def test_late_results_of_a_cancelled_job_are_stored(session: Session) -> None:
    """A queued job whose earlier, ambiguous submission the provider did accept: its webhook,
    even before any acknowledgement was recorded, still stores its image and cost."""
    campaign = make_campaign(session, "queued")
    (job,) = session.scalars(select(Job).where(Job.campaign_id == campaign.id)).all()
    cancel_campaign(session, campaign.id)

    outcome = ingest(session, body=webhook(job, "0.06"), expected_task_uuid=job.task_uuid)

    assert outcome.images_stored == 1
    session.expire_all()
    assert statuses(session, campaign) == ["completed"]
    stored = session.scalar(select(Image.cost).where(Image.job_id == job.id))
    assert stored == Decimal("0.06")


def test_cancelling_a_finished_campaign_is_a_no_op(session: Session) -> None:
    campaign = make_campaign(session, "completed", "failed")

    assert cancel_campaign(session, campaign.id) == 0
    summary = campaign_summary(session, campaign.id)
    assert summary is not None and summary.cancelled_at is None
    assert summary.outcome == "failed"


def test_controls_of_an_unknown_campaign_are_refused(session: Session) -> None:
    for control in (cancel_campaign, pause_campaign, resume_campaign, retry_campaign):
        with pytest.raises(UnknownCampaign, match="CAMPAIGN: 987654321 is not allowed"):
            control(session, 987654321)


def test_pause_holds_the_campaign_until_a_resume_names_it(session: Session) -> None:
    campaign = make_campaign(session, "pending", "queued", "submitted")
    ids = job_ids(session, campaign)

    assert pause_campaign(session, campaign.id) is True
    assert pause_campaign(session, campaign.id) is False  # already paused

    assert statuses(session, campaign) == ["pending", "pending", "submitted"]
    assert jobs.claim(session, job_ids=ids, lease=LEASE) == []
    age(session, campaign)
    assert relay(session, campaign) == []
    # The account probe resumes only what the account's refusal paused.
    assert jobs.any_paused(session, campaign_id=campaign.id) is False
    assert campaign.id not in jobs.resume_campaigns(session)[0]
    summary = campaign_summary(session, campaign.id)
    assert summary is not None and summary.paused and summary.paused_by == "user"

    resumed = resume_campaign(session, campaign.id)

    assert resumed.resumed and not resumed.account
    assert resumed.job_ids == ids[:2]
    assert len(jobs.claim(session, job_ids=ids, lease=LEASE)) == 2
    assert resume_campaign(session, campaign.id).resumed is False  # not paused any more


def test_a_user_pause_outlives_the_account_probe(session: Session) -> None:
    campaign = make_campaign(session, "submitting", "queued")
    submitting = job_ids(session, campaign)[0]
    assert jobs.pause_campaigns(session, job_ids=[submitting], reason="402 no credit") == [
        campaign.id
    ]
    assert jobs.any_paused(session, campaign_id=campaign.id) is True

    assert pause_campaign(session, campaign.id) is True  # the account's pause becomes theirs

    assert jobs.any_paused(session, campaign_id=campaign.id) is False
    assert jobs.resume_campaigns(session) == ([], [])
    resumed = resume_campaign(session, campaign.id)
    assert resumed.resumed and resumed.account is False


def test_an_account_pause_is_lifted_by_the_probe_and_says_so(session: Session) -> None:
    campaign = make_campaign(session, "submitting", "queued")
    ids = job_ids(session, campaign)
    jobs.pause_campaigns(session, job_ids=ids[:1], reason="401")

    resumed = resume_campaign(session, campaign.id)

    assert resumed.resumed and resumed.account  # the edge lifts the workers' shared pause
    assert resumed.job_ids == ids[1:]


@pytest.mark.parametrize("statuses_", [("completed", "failed"), ("pending",)])
def test_pausing_a_finished_or_cancelled_campaign_pauses_nothing(
    session: Session, statuses_: tuple[str, ...]
) -> None:
    campaign = make_campaign(session, *statuses_)
    if "pending" in statuses_:
        cancel_campaign(session, campaign.id)

    assert pause_campaign(session, campaign.id) is False
    summary = campaign_summary(session, campaign.id)
    assert summary is not None and not summary.paused


def test_retry_gives_each_failed_job_one_new_attempt(session: Session) -> None:
    campaign = make_campaign(session, "failed", "completed", "failed")

    new = retry_campaign(session, campaign.id)

    assert len(new) == 2
    assert retry_campaign(session, campaign.id) == []
    summary = campaign_summary(session, campaign.id)
    assert summary is not None
    assert summary.counts == {"completed": 1, "pending": 2} and summary.superseded == 2
