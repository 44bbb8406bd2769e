"""The crash-safe protocol of a synchronous provider call (Ideogram's own API: `delivery`
"sync" in `remixq.providers`): claim, record the call, call, ingest the answer.

Runware deduplicates a second submission by its taskUUID; a synchronous API has no such key,
so a call whose answer never came may have generated, and charged, the images. The protocol
makes that case visible instead of retrying blindly:

1. `claim` takes the job (status `submitting`, an attempt counted) in a short transaction;
2. `mark_sent` records the call (`jobs.call_sent_at`), committed BEFORE the request goes out;
3. the answer goes through the same ingestion as a webhook (`ingest_answer`: the inbox keeps
   it with the source "sync", the images are inserted once by UUIDs derived from the job, the
   attempt and the item's place, so a replayed answer stores nothing twice), which clears
   `call_sent_at`;
4. a lost answer (the client's AnswerLost, or a claim whose call was sent and that expired:
   the worker died mid-call) is `answer_lost`: the job counts it (`jobs.lost_answers`, the
   metric `remixq_provider_answers_lost_total{provider}`) and follows the setting
   REMIXQ_IDEOGRAM_LOST_ANSWER: "fail" (code `possiblyCharged`: a retry is a person's
   conscious choice) or "retry" (called again, accepting a possible second charge).

Every change after the claim is guarded by the claim's attempt number, so a worker whose claim
was taken over (it outlived its lease) changes nothing but what its answer proves: the images
it received are stored all the same (they were paid for), as a late webhook's are.

The provider returns no cost: each image's cost is the price table's (the provider's
`estimate` for the request, divided among its images), and every report marks the costs of
such providers as estimated (`remixq.provider_kinds`). An image the provider withheld as unsafe
(`is_image_safe` false) has no URL; it is stored as such (NSFWContent true, no imageURL) and
costs its share like the others: the generation happened (a documented assumption).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from remixq import jobs
from remixq.db import json_dumps, utcnow
from remixq.ingest import DEFAULT_LIMITS, Limits, Outcome, ingest
from remixq.models import Job
from remixq.provider_kinds import sync_providers
from remixq.states import Event, JobStatus, sources

if TYPE_CHECKING:
    from remixq.providers.ideogram.client import RemixAnswer

# The inbox's source of a synchronous answer (a webhook's is "webhook", a poll's "poll").
SOURCE = "sync"
# The codes a native job ends with (besides the provider's HTTP ones).
POSSIBLY_CHARGED = "possiblyCharged"
SAFETY_REJECTED = "safetyRejected"
# The codes of a job the provider refused on safety grounds rather than failed: Ideogram's 422.
# Runware documents no content code; its errors (and ours) are failures.
REFUSAL_CODES: Final = frozenset({SAFETY_REJECTED})
INCOMPLETE_ANSWER = "incompleteAnswer"
# The namespace of the image UUIDs made for a synchronous answer's items (the API gives none).
IMAGE_NAMESPACE = uuid.UUID("6f1c3a52-8a0e-4d53-9f8e-4b7e2c1d0a11")

LostAnswerPolicy = Literal["fail", "retry"]

# Assumptions on charging, which Ideogram's page (004) leaves open (each decided once, here):
# - an image withheld as unsafe (`is_image_safe` false, no URL) is charged like the others: the
#   generation happened, and the price is per output image;
UNSAFE_IMAGE_CHARGED = True
# - an error answer (400/401/403/422/429/5xx) charges nothing: no image was delivered, so a 429
#   or a 5xx is retried without counting a possible charge;
ERROR_ANSWER_CHARGED = False
# - a call sent whose answer never came MAY have been charged (the images may exist): it is
#   never repeated blindly (REMIXQ_IDEOGRAM_LOST_ANSWER).


def native_job() -> ColumnElement[bool]:
    """SQL: the job is a synchronous provider's."""
    return Job.provider.in_(sorted(sync_providers()))


@dataclass(frozen=True)
class NativeClaim:
    """A native job taken for one call: `attempts` is this claim's number (the guard of every
    later change) and the attempt the answer's image UUIDs are made from."""

    job_id: int
    task_uuid: str
    provider: str
    request: dict[str, Any]
    attempts: int
    campaign_id: int | None


@dataclass(frozen=True)
class LostCall:
    """The claim found a call sent under an expired claim (its worker died mid-call); the
    caller applies `answer_lost` to it."""

    job_id: int
    task_uuid: str
    provider: str
    attempts: int
    sent_at: datetime


def claim(session: Session, *, job_id: int, lease: timedelta) -> NativeClaim | LostCall | None:
    """Take a pending or queued native job for a call (an attempt counted), or one whose
    claim expired before its call was sent. A claim that expired after its call was sent is a
    lost answer: returned as `LostCall`, not taken. None: not claimable (taken, done, paused,
    over budget, not found)."""
    jobs.hold_over_budget(session, job_ids=[job_id])
    now = utcnow()
    row = session.execute(
        select(
            Job.id,
            Job.task_uuid,
            Job.provider,
            Job.status,
            Job.claimed_at,
            Job.call_sent_at,
            Job.attempts,
        )
        # Only a synchronous provider's job: a message naming another (a stale one, a wrong
        # route) takes nothing, so a Runware task is never sent to Ideogram.
        .where(Job.id == job_id, native_job(), jobs.not_paused())
        .with_for_update()
    ).one_or_none()
    if row is None:
        return None
    status = JobStatus(row.status)
    if status is JobStatus.SUBMITTING:
        if row.claimed_at is None or row.claimed_at > now - lease:
            return None  # a live claim
        if row.call_sent_at is not None:
            return LostCall(
                row.id, str(row.task_uuid), row.provider, row.attempts, row.call_sent_at
            )
    elif status not in sources(Event.CLAIM):
        return None
    taken = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == status.value)
        .values(
            status=JobStatus.SUBMITTING.value,
            attempts=Job.attempts + 1,
            claimed_at=now,
            call_sent_at=None,
            updated_at=now,
        )
        .returning(Job.task_uuid, Job.request, Job.attempts, Job.campaign_id)
    ).one()
    return NativeClaim(
        job_id,
        str(taken.task_uuid),
        row.provider,
        taken.request,
        taken.attempts,
        taken.campaign_id,
    )


def _mine(job_id: int, attempts: int) -> ColumnElement[bool]:
    """The job is still submitting under the claim numbered `attempts`."""
    return and_(
        Job.id == job_id,
        Job.status == JobStatus.SUBMITTING.value,
        Job.attempts == attempts,
    )


def mark_sent(session: Session, *, claim: NativeClaim) -> bool:
    """Record that the call is about to be sent (commit before sending); False when the claim
    is no longer this worker's (then nothing may be sent)."""
    now = utcnow()
    result = session.connection().execute(
        update(Job)
        .where(_mine(claim.job_id, claim.attempts))
        .values(call_sent_at=now, updated_at=now)
    )
    return bool(result.rowcount)


def release(
    session: Session, *, claim: NativeClaim, code: str, message: str, retry_at: datetime
) -> bool:
    """A transient failure with nothing charged (a 429, a 5xx, no connection): back to the
    queue for a later attempt, the error kept for the record."""
    result = session.connection().execute(
        update(Job)
        .where(_mine(claim.job_id, claim.attempts))
        .values(
            status=JobStatus.QUEUED.value,
            error_code=code,
            error_message=message,
            enqueued_at=retry_at,
            claimed_at=None,
            call_sent_at=None,
            updated_at=utcnow(),
        )
    )
    return bool(result.rowcount)


def fail(session: Session, *, claim: NativeClaim, code: str, message: str) -> bool:
    """A final failure of this claim's call (a 422 with the provider's message, a 400, the
    attempts spent)."""
    now = utcnow()
    result = session.connection().execute(
        update(Job)
        .where(_mine(claim.job_id, claim.attempts))
        .values(
            status=JobStatus.FAILED.value,
            error_code=code,
            error_message=message,
            finished_at=now,
            call_sent_at=None,
            updated_at=now,
        )
    )
    return bool(result.rowcount)


@dataclass(frozen=True)
class LostOutcome:
    """What became of a lost answer's job: `failed` (possiblyCharged), `retry` (released, to
    be called again: the caller publishes it), `counted` (its job was cancelled mid-call: only
    counted) or `gone` (no longer that call's: nothing)."""

    action: Literal["failed", "retry", "counted", "gone"]
    message: str


def answer_lost(
    session: Session,
    *,
    job_id: int,
    attempts: int,
    policy: LostAnswerPolicy,
    max_attempts: int,
    retry_at: datetime,
    why: str,
) -> LostOutcome:
    """Count a lost answer on the job (it may have been charged) and apply `policy`: "fail"
    fails it with `possiblyCharged`; "retry" releases it for another call unless its
    `max_attempts` are spent (then it fails the same way). Guarded by the claim's `attempts`."""
    now = utcnow()
    counted = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempts == attempts, Job.call_sent_at.is_not(None))
        .values(lost_answers=Job.lost_answers + 1, call_sent_at=None, updated_at=now)
        .returning(Job.status)
    ).one_or_none()
    if counted is None:
        return LostOutcome("gone", "")
    lost = f"the answer to call {attempts} was lost ({why}); it may have been charged"
    if counted.status != JobStatus.SUBMITTING.value:
        # Cancelled mid-call: counted all the same, and the job stays as it is.
        return LostOutcome("counted", f"{lost}; the job is {counted.status}")
    if policy == "retry" and attempts < max_attempts:
        message = f"{lost}: called again (REMIXQ_IDEOGRAM_LOST_ANSWER=retry)"
        session.execute(
            update(Job)
            .where(_mine(job_id, attempts))
            .values(
                status=JobStatus.QUEUED.value,
                error_code=POSSIBLY_CHARGED,
                error_message=message,
                enqueued_at=retry_at,
                claimed_at=None,
            )
        )
        return LostOutcome("retry", message)
    if policy == "retry":
        message = f"{lost}; gave up after {attempts} attempts"
    else:
        message = f"{lost}; `remixq retry` calls again, at the risk of a second charge"
    session.execute(
        update(Job)
        .where(_mine(job_id, attempts))
        .values(
            status=JobStatus.FAILED.value,
            error_code=POSSIBLY_CHARGED,
            error_message=message,
            finished_at=now,
        )
    )
    return LostOutcome("failed", message)


def take_lost_calls(session: Session, *, lease: timedelta, limit: int = 1000) -> list[LostCall]:
    """Native jobs whose claim expired after their call was sent (the worker died mid-call),
    locked (`SKIP LOCKED`) for `answer_lost`: the relay never simply publishes them again."""
    rows = session.execute(
        select(Job.id, Job.task_uuid, Job.provider, Job.attempts, Job.call_sent_at)
        .where(
            # Cancelled mid-call too: its possible charge is counted all the same.
            Job.status.in_([JobStatus.SUBMITTING.value, JobStatus.CANCELLED.value]),
            Job.claimed_at <= utcnow() - lease,
            Job.call_sent_at.is_not(None),
            native_job(),
        )
        .order_by(Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return [LostCall(r.id, str(r.task_uuid), r.provider, r.attempts, r.call_sent_at) for r in rows]


def image_uuid(task_uuid: str, attempt: int, index: int) -> str:
    """The UUID of item `index` of the answer to call `attempt` of a job: the same answer
    ingested again makes the same UUIDs, so it stores nothing twice."""
    return str(uuid.uuid5(IMAGE_NAMESPACE, f"{task_uuid.lower()}/{attempt}/{index}"))


def answer_body(
    task_uuid: str,
    attempt: int,
    answer: RemixAnswer,
    *,
    cost_per_image: Decimal,
    provider: str,
) -> bytes:
    """The answer as the webhook envelope ingestion reads (and a replay reads back): one
    result item per image, with its UUID, URL (none for an unsafe one), seed, NSFW flag (not
    `is_image_safe`) and estimated cost, and the provider's own item beside them."""
    items = []
    for index, item in enumerate(answer.items):
        own = {
            "url": item.url,
            "prompt": item.prompt,
            "resolution": item.resolution,
            "upscaled_resolution": item.upscaled_resolution,
            "is_image_safe": item.is_image_safe,
            "seed": item.seed,
            "style_type": item.style_type,
        }
        result: dict[str, Any] = {
            "taskType": "imageInference",
            "status": "success",
            "taskUUID": task_uuid,
            "imageUUID": image_uuid(task_uuid, attempt, index),
            "seed": item.seed,
            "NSFWContent": not item.is_image_safe,
            "cost": cost_per_image if item.is_image_safe or UNSAFE_IMAGE_CHARGED else 0,
            "costEstimated": True,
            "provider": provider,
            "attempt": attempt,
            "created": answer.created,
            "resolution": item.resolution,
            "isImageSafe": item.is_image_safe,
            provider: own,
        }
        if item.url:
            result["imageURL"] = item.url
        items.append(result)
    return json_dumps({"data": items}).encode()


def ingest_answer(
    session: Session,
    *,
    claim: NativeClaim,
    answer: RemixAnswer,
    cost_per_image: Decimal,
    limits: Limits = DEFAULT_LIMITS,
) -> Outcome:
    """Store the answer to `claim`'s call through the webhook path (inbox row kept, images
    inserted once), clear the call, and fail the job if the answer held fewer images than it
    asked for (it is never polled: nothing more will come). Never commits."""
    body = answer_body(
        claim.task_uuid,
        claim.attempts,
        answer,
        cost_per_image=cost_per_image,
        provider=claim.provider,
    )
    outcome = ingest(
        session, body=body, source=SOURCE, expected_task_uuid=claim.task_uuid, limits=limits
    )
    session.execute(
        update(Job)
        .where(Job.id == claim.job_id, Job.attempts == claim.attempts)
        .values(call_sent_at=None)
    )
    status = outcome.job_statuses.get(claim.task_uuid)
    if status in (JobStatus.SUBMITTING.value, JobStatus.SUBMITTED.value):
        row = session.execute(
            select(Job.number_results, Job.results_received).where(Job.id == claim.job_id)
        ).one()
        jobs.fail(
            session,
            job_ids=[claim.job_id],
            code=INCOMPLETE_ANSWER,
            message=(
                f"the answer held {row.results_received} of {row.number_results} images;"
                " a synchronous call sends nothing later"
            ),
        )
        outcome.job_statuses[claim.task_uuid] = JobStatus.FAILED.value
    return outcome


def cost_per_image(provider: Any, request: dict[str, Any], prices: Any) -> Decimal:
    """Each image's share of the price table's estimate for the request."""
    count = max(1, int(provider.number_results(request)))
    return Decimal(provider.estimate(request, prices)) / count


def among(session: Session, job_ids: Iterable[int]) -> set[int]:
    """Which of `job_ids` are native jobs (published on the native queue, one per message)."""
    ids = list(job_ids)
    found: set[int] = set()
    if not sync_providers():
        return found
    for start in range(0, len(ids), 1000):
        found.update(
            session.scalars(
                select(Job.id).where(Job.id.in_(ids[start : start + 1000]), native_job())
            )
        )
    return found


def not_native() -> ColumnElement[bool]:
    """SQL: the job is not a synchronous provider's (the reconciler's and the Runware relay's
    rows)."""
    return or_(Job.provider.is_(None), Job.provider.not_in(sorted(sync_providers())))
