"""The relay and the reconciler's domain functions, on both backends."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remixq import jobs, producing, reconcile, relay
from remixq.db import utcnow
from remixq.models import Job, WebhookEvent
from remixq.providers.runware import PollResult, ProviderError
from remixq.providers.runware.results import read_poll
from remixq.replay import replay_events
from remixq.reports import campaign_cost
from tests.support.factories import make_job

SECOND = timedelta(seconds=1)


def relay_now(session: Session) -> list[int]:
    """A round whose broker cannot tell what it holds: the age rule (test_relay_backlog.py has
    the broker's side)."""
    return relay.take_lost_jobs(
        session,
        pending_grace=10 * SECOND,
        queued_stale=60 * SECOND,
        claim_lease=120 * SECOND,
        broker_messages=lambda: None,
        batch=10,
    )


def age(session: Session, job: Job, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    session.flush()


def test_relay_takes_lost_jobs_only(session: Session) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    fresh_pending = make_job(session, status="pending")
    lost_pending = make_job(session, status="pending")
    age(session, lost_pending, updated_at=long_ago)
    stale_queued = make_job(session, status="queued")
    age(session, stale_queued, enqueued_at=long_ago)
    fresh_queued = make_job(session, status="queued")
    age(session, fresh_queued, enqueued_at=utcnow())
    dead_claim = make_job(session, status="submitting")
    age(session, dead_claim, claimed_at=long_ago)
    live_claim = make_job(session, status="submitting")
    age(session, live_claim, claimed_at=utcnow())
    done = make_job(session, status="completed")
    age(session, done, updated_at=long_ago)

    taken = set(relay_now(session))
    assert {lost_pending.id, stale_queued.id, dead_claim.id} <= taken
    assert not taken & {fresh_pending.id, fresh_queued.id, live_claim.id, done.id}
    session.refresh(lost_pending)
    session.refresh(dead_claim)
    assert lost_pending.status == dead_claim.status == "queued"
    assert not set(relay_now(session)) & taken  # marked: not taken again at once


def test_two_relays_never_take_the_same_job(pg_url: str) -> None:
    from remixq.db import make_engine

    engine = make_engine(pg_url)
    with Session(engine) as setup, setup.begin():
        for _ in range(5):
            job = make_job(setup, status="pending")
            job.updated_at = utcnow() - timedelta(hours=1)
    first, second = Session(engine), Session(engine)
    try:
        first.begin()
        taken_first = set(relay_now(first))  # rows stay locked until `first` commits
        second.begin()
        taken_second = set(relay_now(second))
        assert taken_first and not taken_first & taken_second
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()
        engine.dispose()


def test_reconciler_takes_due_jobs_and_backs_off(session: Session) -> None:
    quiet = make_job(session, status="submitted")
    age(session, quiet, updated_at=utcnow() - timedelta(minutes=5))
    recent = make_job(session, status="submitted")
    due = reconcile.take_due(session, reconcile_after=60 * SECOND, cap=600 * SECOND, limit=100)
    assert quiet.id in {d.job_id for d in due} and recent.id not in {d.job_id for d in due}
    session.refresh(quiet)
    first_check = quiet.next_check_at
    assert quiet.checks == 1 and first_check is not None and first_check > utcnow()
    again = reconcile.take_due(session, reconcile_after=60 * SECOND, cap=600 * SECOND, limit=100)
    assert quiet.id not in {d.job_id for d in again}  # not before its next check
    assert reconcile.next_delay(1, first=60 * SECOND, cap=600 * SECOND) == 120 * SECOND
    assert reconcile.next_delay(9, first=60 * SECOND, cap=600 * SECOND) == 600 * SECOND


def test_poll_results_go_through_idempotent_ingestion(session: Session) -> None:
    job = make_job(session, number_results=2, status="submitted")
    items = [
        {
            "taskType": "imageInference",
            "taskUUID": job.task_uuid,
            "status": "success",
            "imageUUID": str(uuid.uuid4()),
            "cost": 0.06,
            "seed": 1,
        }
        for _ in range(2)
    ]
    outcome = reconcile.apply_poll(session, PollResult(job.task_uuid, items))
    assert outcome is not None and outcome.images_stored == 2
    again = reconcile.apply_poll(session, PollResult(job.task_uuid, items))
    assert again is not None and (again.images_stored, again.duplicates) == (0, 2)
    session.refresh(job)
    assert (job.status, job.results_received) == ("completed", 2)
    assert reconcile.apply_poll(session, PollResult(job.task_uuid, [], [])) is None


def test_a_poll_is_applied_as_read_and_kept_for_a_replay(session: Session) -> None:
    job = make_job(session, number_results=2, status="submitted")
    done = {"taskUUID": job.task_uuid, "status": "success", "imageUUID": str(uuid.uuid4())}
    failed = ProviderError.from_dict(
        {"code": "contentModerated", "message": "no", "taskUUID": job.task_uuid}
    )
    poll = read_poll(job.task_uuid, [{**done, "cost": Decimal("0.0013")}], [failed])
    outcome = reconcile.apply_poll(session, poll)
    assert outcome is not None and (outcome.inbox_status, outcome.images_stored) == ("processed", 1)
    session.refresh(job)
    assert (job.status, job.error_code, job.results_received) == ("failed", "contentModerated", 1)
    event = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id.desc())).first()
    assert event is not None and (event.source, event.task_uuid) == ("poll", job.task_uuid)
    tally = replay_events(session, event_ids=[event.id])
    assert (tally["processed"], tally["images_stored"]) == (1, 0)
    assert campaign_cost(session, job.campaign_id or 0) == Decimal("0.0013")


def test_a_poll_with_an_invalid_item_is_kept_as_invalid(session: Session) -> None:
    job = make_job(session, number_results=1, status="submitted")
    bad = {"taskUUID": job.task_uuid, "status": "success", "imageUUID": "x"}
    outcome = reconcile.apply_poll(session, PollResult(job.task_uuid, [bad]))
    assert outcome is not None and outcome.inbox_status == "invalid"
    event = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id.desc())).first()
    assert event is not None and (event.source, event.status) == ("poll", "invalid")
    session.refresh(job)
    assert (job.status, job.results_received) == ("submitted", 0)


def test_old_open_jobs_expire(session: Session) -> None:
    old = make_job(session, status="submitted")
    age(session, old, created_at=utcnow() - timedelta(days=2))
    young = make_job(session, status="submitted")
    assert reconcile.expire_old(session, max_age=timedelta(days=1)) >= 1
    session.refresh(old)
    session.refresh(young)
    assert (old.status, old.error_code) == ("failed", "expired")
    assert young.status == "submitted"


def test_retry_makes_one_linked_attempt_with_a_new_task_uuid(session: Session) -> None:
    failed = make_job(session, status="failed")
    failed.request = {
        "taskUUID": failed.task_uuid,
        "model": "ideogram:1@2",
        "webhookURL": "http://old",
    }
    session.flush()
    new_ids = producing.retry_failed(session, task_uuid=failed.task_uuid)
    assert len(new_ids) == 1
    new = session.get(Job, new_ids[0])
    assert new is not None and new.retry_of_id == failed.id and new.status == "pending"
    assert new.task_uuid != failed.task_uuid
    assert new.request["taskUUID"] == new.task_uuid
    assert "webhookURL" not in new.request  # the worker adds its own at hand-off
    assert producing.retry_failed(session, task_uuid=failed.task_uuid) == []


def test_replay_turns_an_orphan_into_images_once(session: Session, engine: Engine) -> None:
    from remixq.ingest import ingest

    task_uuid = str(uuid.uuid4())
    body = (f'{{"taskUUID": "{task_uuid}", "imageUUID": "{uuid.uuid4()}", "cost": 0.06}}').encode()
    assert ingest(session, body=body, expected_task_uuid=task_uuid).inbox_status == "orphan"
    job = make_job(session, status="submitted")
    job.task_uuid = task_uuid
    session.flush()
    tally = replay_events(session)
    assert tally["processed"] >= 1 and tally["images_stored"] == 1
    event = session.scalars(select(WebhookEvent).where(WebhookEvent.task_uuid == task_uuid)).one()
    assert event.status == "processed"
    again = replay_events(session, event_ids=[event.id])
    assert again["images_stored"] == 0
    session.refresh(job)
    assert job.status == "completed"


@pytest.mark.parametrize("status", ["pending", "queued"])
def test_claim_takes_open_jobs_once(session: Session, status: str) -> None:
    job = make_job(session, status=status)
    (claim,) = jobs.claim(session, job_ids=[job.id], lease=120 * SECOND)
    assert claim.attempts == 1 and claim.task_uuid == job.task_uuid
    assert jobs.claim(session, job_ids=[job.id], lease=120 * SECOND) == []


def test_claim_takes_over_an_expired_claim_and_nothing_else(session: Session) -> None:
    dead = make_job(session, status="submitting")
    age(session, dead, claimed_at=utcnow() - 300 * SECOND, attempts=1)
    live = make_job(session, status="submitting")
    age(session, live, claimed_at=utcnow(), attempts=1)
    done = make_job(session, status="completed")
    claims = jobs.claim(session, job_ids=[done.id, live.id, dead.id], lease=120 * SECOND)
    assert [(c.job_id, c.attempts) for c in claims] == [(dead.id, 2)]


def test_transitions_move_only_the_jobs_their_event_moves(session: Session) -> None:
    submitting = make_job(session, status="submitting")
    completed = make_job(session, status="completed")
    assert jobs.record_accepted(session, job_ids=[submitting.id, completed.id]) == 1
    assert not jobs.fail(session, job_ids=[completed.id], code="late", message="after the results")
    session.expire_all()  # the transitions are Core statements: loaded jobs are not refreshed
    assert (submitting.status, completed.status) == ("submitted", "completed")
    assert submitting.submitted_at is not None and completed.error_code is None
    retry_at = utcnow() + 60 * SECOND
    assert (
        jobs.release(
            session, job_ids=[submitting.id], code="timeout", message="x", retry_at=retry_at
        )
        == 0
    )  # submitted is past releasing


def test_first_checks_do_not_starve_behind_rechecks_on_postgresql(pg_session: Session) -> None:
    """More due jobs than one round takes: a job never checked, due for an hour, goes before
    re-checked ones due for a minute (NULL next_check_at sorted last starved it)."""
    now = utcnow()
    rechecked = [make_job(pg_session, status="submitted") for _ in range(5)]
    for job in rechecked:
        age(pg_session, job, checks=1, next_check_at=now - timedelta(minutes=1))
    never = make_job(pg_session, status="submitted")
    age(pg_session, never, updated_at=now - timedelta(hours=1))
    due = reconcile.take_due(pg_session, reconcile_after=60 * SECOND, cap=600 * SECOND, limit=3)
    assert never.id in {d.job_id for d in due}


def test_due_jobs_are_taken_longest_waiting_first(session: Session) -> None:
    now = utcnow()
    late = make_job(session, status="submitted")
    age(session, late, checks=2, next_check_at=now - timedelta(minutes=30))
    never = make_job(session, status="submitted")
    age(session, never, updated_at=now - timedelta(minutes=11))  # due 10 minutes ago
    recent = make_job(session, status="submitted")
    age(session, recent, checks=1, next_check_at=now - timedelta(minutes=1))
    due = reconcile.take_due(session, reconcile_after=60 * SECOND, cap=600 * SECOND, limit=100)
    ours = [d.job_id for d in due if d.job_id in {late.id, never.id, recent.id}]
    assert ours == [late.id, never.id, recent.id]


@pytest.mark.parametrize(
    "error",
    [
        {"code": "timeoutProvider", "message": "slow", "taskUUID": "TASK"},  # transient
        {"code": "contentModerated", "message": "about no task"},  # not tied to the task
        {"code": "internalServerError", "message": "both"},
    ],
)
def test_a_poll_error_that_is_transient_or_untied_fails_nothing(
    session: Session, error: dict[str, str]
) -> None:
    job = make_job(session, number_results=2, status="submitted")
    error = {k: v.replace("TASK", job.task_uuid) for k, v in error.items()}
    poll = read_poll(job.task_uuid, [], [ProviderError.from_dict(error)])
    assert (poll.errors, [e.code for e in poll.deferred]) == ([], [error["code"]])
    assert reconcile.apply_poll(session, poll) is None
    done = {"taskUUID": job.task_uuid, "status": "success", "imageUUID": str(uuid.uuid4())}
    item = {**error, "status": "error"}
    with_result = read_poll(job.task_uuid, [done, item], [])
    outcome = reconcile.apply_poll(session, with_result)
    assert outcome is not None and outcome.images_stored == 1
    session.refresh(job)
    assert (job.status, job.error_code, job.results_received) == ("submitted", None, 1)


def test_a_task_error_still_reported_at_the_final_check_fails_the_job(session: Session) -> None:
    """A generation that ended in a transient code, whose webhook was lost: deferred at first,
    the job's outcome once the provider still says so at REMIXQ_RECONCILE_FINAL_CHECK."""
    job = make_job(session, status="submitted")
    error = {"code": "timeoutProvider", "message": "slow", "taskUUID": job.task_uuid}
    poll = read_poll(job.task_uuid, [], [ProviderError.from_dict(error)])
    untied = read_poll(job.task_uuid, [], [ProviderError.from_dict({"code": "x", "message": "y"})])
    running = read_poll(job.task_uuid, [{"taskUUID": job.task_uuid, "status": "processing"}], [])
    running = replace(running, deferred=poll.deferred)

    for check in (1, 2):
        early = reconcile.settle(poll, check=check, final_from=3)
        assert reconcile.apply_poll(session, early) is None
    assert reconcile.settle(untied, check=9, final_from=3) == untied  # about the request
    assert reconcile.settle(running, check=9, final_from=3) == running  # still in progress
    session.refresh(job)
    assert job.status == "submitted"

    outcome = reconcile.apply_poll(session, reconcile.settle(poll, check=3, final_from=3))

    assert outcome is not None
    session.refresh(job)
    assert (job.status, job.error_code) == ("failed", "timeoutProvider")
