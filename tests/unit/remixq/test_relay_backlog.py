"""The relay tells a lost message from a waiting one (`remixq.relay`), on both backends: a stale
queued job is lost only when the broker's messages cannot carry it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from remixq import relay
from remixq.db import utcnow
from remixq.models import Campaign, Job
from tests.support.factories import make_job, park_other_open_jobs

SECOND = timedelta(seconds=1)
BATCH = 10
STALE = 60 * SECOND


def take(session: Session, messages: int | None, *, limit: int = 1000) -> list[int]:
    return relay.take_lost_jobs(
        session,
        pending_grace=10 * SECOND,
        queued_stale=STALE,
        claim_lease=120 * SECOND,
        broker_messages=lambda: messages,
        batch=BATCH,
        limit=limit,
    )



def queued(session: Session, count: int, *, minutes_ago: float) -> list[Job]:
    """`count` queued jobs handed to the broker `minutes_ago`, one second apart, oldest first."""
    made = []
    for index in range(count):
        job = make_job(session, status="queued")
        job.enqueued_at = utcnow() - timedelta(minutes=minutes_ago) + index * SECOND
        made.append(job)
    session.flush()
    return made


def test_a_backlog_the_broker_holds_is_not_relayed(session: Session) -> None:
    park_other_open_jobs(session)
    stale = queued(session, 25, minutes_ago=30)  # a long backlog under a low rate limit
    queued(session, 5, minutes_ago=0)
    assert take(session, 3) == []  # 3 messages of up to 10 carry all 30 jobs
    assert take(session, 4) == []
    assert len(take(session, None)) == len(stale)  # a broker that cannot tell: the age rule


def test_an_empty_broker_accounts_for_no_stale_job(session: Session) -> None:
    park_other_open_jobs(session)
    stale = queued(session, 25, minutes_ago=30)
    fresh = queued(session, 5, minutes_ago=0)
    taken = take(session, 0)
    assert sorted(taken) == sorted(job.id for job in stale)  # fresh ones are given their time
    assert not set(taken) & {job.id for job in fresh}
    assert take(session, 0) == []  # re-stamped: fresh again


def test_the_shortfall_is_taken_from_the_oldest_stale_jobs(session: Session) -> None:
    park_other_open_jobs(session)
    stale = queued(session, 25, minutes_ago=30)
    queued(session, 5, minutes_ago=0)
    # 30 queued jobs, 2 messages carry at most 20: at least 10 have no message, and in a FIFO
    # queue the oldest are the ones whose messages should have come out first.
    assert take(session, 2) == [job.id for job in stale[:10]]
    # The 10 just published are fresh now: 20 queued are left stale besides them.
    assert take(session, 4) == []


def test_the_shortfall_never_reaches_fresh_jobs(session: Session) -> None:
    park_other_open_jobs(session)
    stale = queued(session, 3, minutes_ago=30)
    queued(session, 40, minutes_ago=0)  # e.g. a campaign whose messages were lost just now
    assert sorted(take(session, 0)) == sorted(job.id for job in stale)


def test_pending_and_dead_claims_are_lost_whatever_the_broker_holds(session: Session) -> None:
    park_other_open_jobs(session)
    long_ago = utcnow() - timedelta(hours=1)
    pending = make_job(session, status="pending")
    pending.updated_at = long_ago
    dead = make_job(session, status="submitting")
    dead.claimed_at = long_ago
    waiting = queued(session, 5, minutes_ago=30)
    session.flush()
    taken = take(session, 1_000)
    assert sorted(taken) == sorted([pending.id, dead.id])
    assert not set(taken) & {job.id for job in waiting}


def test_the_limit_bounds_a_round(session: Session) -> None:
    park_other_open_jobs(session)
    pending = make_job(session, status="pending")
    pending.updated_at = utcnow() - timedelta(hours=1)
    stale = queued(session, 5, minutes_ago=30)
    assert take(session, 0, limit=3) == [pending.id] + [job.id for job in stale[:2]]


def test_a_paused_campaigns_jobs_wait_whatever_the_broker_holds(session: Session) -> None:
    park_other_open_jobs(session)
    (job,) = queued(session, 1, minutes_ago=30)
    campaign = session.get(Campaign, job.campaign_id)
    assert campaign is not None
    campaign.paused_at = utcnow()
    session.flush()
    assert take(session, 0) == []
