"""The relay and the reconciler with native (synchronous) jobs beside Runware's, on both
backends: a native job is weighed against its own queue's messages, its dead claim is relayed
only when no call was sent under it (a sent call is a lost answer: `native.take_lost_calls`),
and the reconciler never polls it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from remixq import native, reconcile, relay
from remixq.db import utcnow
from remixq.models import Job
from tests.support.factories import make_job, park_other_open_jobs

SECOND = timedelta(seconds=1)
CLAIM_LEASE = 120 * SECOND
NATIVE_LEASE = 300 * SECOND


def native_job(session: Session, status: str, **fields: Any) -> Job:
    job = make_job(session, status=status, model="ideogram-v3-remix")
    job.provider = "ideogram"
    for name, value in fields.items():
        setattr(job, name, value)
    session.flush()
    return job


def runware_job(session: Session, status: str, **fields: Any) -> Job:
    job = make_job(session, status=status)
    for name, value in fields.items():
        setattr(job, name, value)
    session.flush()
    return job


def relay_round(
    session: Session, *, runware_messages: int | None, native_messages: int | None
) -> list[int]:
    return relay.take_lost_jobs(
        session,
        pending_grace=10 * SECOND,
        queued_stale=60 * SECOND,
        claim_lease=CLAIM_LEASE,
        broker_messages=lambda: runware_messages,
        batch=10,
        native_lease=NATIVE_LEASE,
        native_messages=lambda: native_messages,
    )


def test_native_queued_jobs_are_weighed_against_their_own_queue(session: Session) -> None:
    park_other_open_jobs(session)
    long_ago = utcnow() - timedelta(hours=1)
    runware = [runware_job(session, "queued", enqueued_at=long_ago) for _ in range(3)]
    natives = [native_job(session, "queued", enqueued_at=long_ago) for _ in range(3)]

    # One Runware message carries all three of its jobs; the native queue holds two messages,
    # one job each: the third native job (the newest) is the one lost.
    assert relay_round(session, runware_messages=1, native_messages=2) == [natives[0].id]
    assert relay_round(session, runware_messages=0, native_messages=3) == sorted(
        job.id for job in runware
    )


def test_a_dead_native_claim_is_relayed_only_when_no_call_was_sent(session: Session) -> None:
    park_other_open_jobs(session)
    past_runware_lease = utcnow() - CLAIM_LEASE - SECOND
    past_native_lease = utcnow() - NATIVE_LEASE - SECOND
    slow_call = native_job(session, "submitting", claimed_at=past_runware_lease)
    never_sent = native_job(session, "submitting", claimed_at=past_native_lease)
    sent = native_job(
        session, "submitting", claimed_at=past_native_lease, call_sent_at=past_native_lease
    )

    # A native claim lives for the call's timeout and more; one whose call was sent is a lost
    # answer, never simply published again.
    assert relay_round(session, runware_messages=None, native_messages=None) == [never_sent.id]
    lost = native.take_lost_calls(session, lease=NATIVE_LEASE)
    assert [call.job_id for call in lost] == [sent.id]
    assert slow_call.id not in [call.job_id for call in lost]


def test_the_reconciler_never_polls_a_native_job(session: Session) -> None:
    park_other_open_jobs(session)
    long_ago = utcnow() - timedelta(hours=1)
    polled = runware_job(session, "submitted", updated_at=long_ago)
    native_job(session, "submitted", updated_at=long_ago)

    due = reconcile.take_due(session, reconcile_after=45 * SECOND, cap=600 * SECOND, limit=50)

    assert [d.job_id for d in due] == [polled.id]
