"""The native task: one synchronous call to a provider's own API (Ideogram's) per message.

The task owns the transactions and the retry policy of `remixq.native`'s protocol: a permit of
the provider's own limit, the claim, the call recorded (committed) before it is sent, the
call, then the answer stored through the webhook path and its images handed to the asset store
at once (their links expire). It acks late: a message that comes back after a crash finds its
job taken (a live claim: nothing), done, or with a call sent under an expired claim (a lost
answer: the documented policy, never a blind second call).

Errors, from the provider-neutral tree (`remixq.providers.errors`): a 429 or a 5xx, or no
connection, releases the job for another attempt after a backoff (a 429/503/504 also pauses
the provider's shared limit); a 422 fails it with the provider's message (`safetyRejected`);
another permanent answer fails it with its HTTP status; a lost answer (`AnswerLost`) marks it
possibly charged and follows REMIXQ_IDEOGRAM_LOST_ANSWER.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from sqlalchemy.exc import OperationalError

from remixq import logs, native
from remixq import metrics as m
from remixq.db import transaction, utcnow
from remixq.ingest import Limits
from remixq.native import LostCall, NativeClaim
from remixq.providers import provider_for
from remixq.providers.errors import (
    AnswerLost,
    PermanentError,
    SafetyRejected,
    TransientError,
)
from remixq.providers.ideogram.client import RemixAnswer
from worker import assets
from worker.names import NATIVE_TASK
from worker.observed import PACE_TIMEOUT
from worker.ratelimit import LimitTimeout
from worker.runtime import Runtime
from worker.tasks import backoff, throttled

log = logging.getLogger("remixq.native")

# Tries at storing an answer before giving up (the database away): the answer is held in
# memory meanwhile; past them the claim expires and the call counts as a lost answer.
STORE_TRIES = 5


def register(app: Celery, runtime: Runtime) -> None:
    # Not shared, as the submission task (worker.tasks.register).
    @app.task(name=NATIVE_TASK, bind=True, acks_late=True, max_retries=None, shared=False)
    def native_remix(self: Task, job_id: int) -> dict[str, Any]:
        return call(self, app, runtime, job_id)


def call(task: Task, app: Celery, runtime: Runtime, job_id: int) -> dict[str, Any]:
    """The protocol for one job; the permit (a place in flight under the provider's limit)
    comes before the claim, so a claim covers the call alone."""
    try:
        with _permit(runtime):
            return _claim_and_call(task, app, runtime, job_id)
    except LimitTimeout:
        raise task.retry(args=[job_id], countdown=1, max_retries=None) from None


@contextmanager
def _permit(runtime: Runtime) -> Iterator[None]:
    started = time.monotonic()
    with runtime.native_limit.permit():
        m.LIMIT_WAIT_SECONDS.observe(time.monotonic() - started)
        yield


def _claim_and_call(task: Task, app: Celery, runtime: Runtime, job_id: int) -> dict[str, Any]:
    lease = timedelta(seconds=runtime.settings.native_claim_lease_seconds)
    with transaction(runtime.sessions) as session:
        taken = native.claim(session, job_id=job_id, lease=lease)
    if taken is None:
        log.info("no native job claimable (taken, done or held)", extra={"job_id": job_id})
        return {"skipped": 1}
    with logs.bound(job_id=taken.job_id, task_uuid=taken.task_uuid):
        if isinstance(taken, LostCall):
            return lost(task, runtime, taken, why="its worker stopped mid-call")
        with logs.bound(campaign_id=taken.campaign_id):
            return _call(task, app, runtime, taken)


def _call(task: Task, app: Celery, runtime: Runtime, claim: NativeClaim) -> dict[str, Any]:
    try:
        runtime.native_limit.pace(PACE_TIMEOUT)  # before the call is recorded: nothing sent
    except LimitTimeout as exc:
        with transaction(runtime.sessions) as session:
            native.release(
                session, claim=claim, code="rateLimitWait", message=str(exc), retry_at=utcnow()
            )
        raise task.retry(args=[claim.job_id], countdown=1, max_retries=None) from None
    with transaction(runtime.sessions) as session:
        if not native.mark_sent(session, claim=claim):
            log.info("the claim was taken over before the call; nothing sent")
            return {"skipped": 1}
    started, outcome = time.monotonic(), "error"
    try:
        answer = runtime.ideogram.remix(claim.request)
        outcome = "ok"
    except AnswerLost as exc:
        return lost(task, runtime, claim, why=str(exc))
    except SafetyRejected as exc:
        return _failed(runtime, claim, native.SAFETY_REJECTED, exc.message)
    except TransientError as exc:
        return _retry_later(task, runtime, claim, exc)
    except PermanentError as exc:
        code = f"http{exc.status}" if exc.status else type(exc).__name__
        return _failed(runtime, claim, code, str(exc))
    finally:
        m.PROVIDER_SECONDS.labels("native_remix", outcome).observe(time.monotonic() - started)
    return _store(app, runtime, claim, answer)


def _store(
    app: Celery, runtime: Runtime, claim: NativeClaim, answer: RemixAnswer
) -> dict[str, Any]:
    """The answer through the webhook path, retried while the database is away (the answer
    was paid for); then the images handed to the asset store at once."""
    settings = runtime.settings
    provider = provider_for(claim.provider)
    per_image = native.cost_per_image(provider, claim.request, runtime.prices)
    for attempt in range(1, STORE_TRIES + 1):
        try:
            with transaction(runtime.sessions) as session:
                outcome = native.ingest_answer(
                    session,
                    claim=claim,
                    answer=answer,
                    cost_per_image=per_image,
                    limits=Limits.of(settings),
                )
            break
        except OperationalError:
            if attempt == STORE_TRIES:
                raise
            log.warning("storing the answer failed; trying again", extra={"try": attempt})
            time.sleep(min(8.0, 0.5 * 2**attempt))
    status = outcome.job_statuses.get(claim.task_uuid, "?")
    m.NATIVE_CALLS.labels(claim.provider, "stored").inc()
    log.info(
        "native answer stored",
        extra={
            "attempt": claim.attempts,
            "images": outcome.images_stored,
            "duplicates": outcome.duplicates,
            "status": status,
        },
    )
    try:
        assets.sweep(app, runtime)  # hand the new images over now, not at the next sweep
    except Exception as exc:  # noqa: BLE001 (beat's sweep hands them over anyway)
        log.warning("asset hand-over deferred to the sweep", extra={"error": str(exc)})
    return {"stored": outcome.images_stored, "status": status}


def _failed(runtime: Runtime, claim: NativeClaim, code: str, message: str) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        native.fail(session, claim=claim, code=code, message=message)
    m.NATIVE_CALLS.labels(claim.provider, "failed").inc()
    log.warning("provider refused the call", extra={"code": code, "error": message})
    return {"failed": 1, "code": code}


def _retry_later(
    task: Task, runtime: Runtime, claim: NativeClaim, exc: TransientError
) -> dict[str, Any]:
    """Nothing was charged (a 429, a 5xx, no connection): another attempt after a backoff,
    unless the job's attempts are spent."""
    settings = runtime.settings
    code = type(exc).__name__
    if throttled(exc):
        m.LIMIT_PAUSES.labels("throttled").inc()
        runtime.native_limit.pause(exc.retry_after)
    if claim.attempts >= settings.submit_max_retries + 1:
        message = f"gave up after {claim.attempts} attempts: {exc}"
        return _failed(runtime, claim, "retriesExhausted", message)
    delay = backoff(
        claim.attempts - 1,
        base=settings.submit_backoff_base,
        cap=settings.submit_backoff_cap,
        retry_after=exc.retry_after,
    )
    with transaction(runtime.sessions) as session:
        native.release(
            session,
            claim=claim,
            code=code,
            message=str(exc),
            retry_at=utcnow() + timedelta(seconds=delay),
        )
    m.NATIVE_CALLS.labels(claim.provider, "retried").inc()
    m.RETRIES.labels(code).inc()
    log.info("transient failure, retrying", extra={"delay": round(delay, 2), "error": str(exc)})
    raise task.retry(args=[claim.job_id], countdown=delay, max_retries=None)


def lost(
    task: Task | None, runtime: Runtime, call: NativeClaim | LostCall, *, why: str
) -> dict[str, Any]:
    """A call whose answer never came: counted (it may have been charged), then the policy
    (REMIXQ_IDEOGRAM_LOST_ANSWER). With "retry", `task` (when given) calls again at once; the
    relay, without one, publishes the job."""
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        outcome = native.answer_lost(
            session,
            job_id=call.job_id,
            attempts=call.attempts,
            policy=settings.ideogram_lost_answer,
            max_attempts=settings.submit_max_retries + 1,
            retry_at=utcnow(),
            why=why,
        )
    if outcome.action == "gone":
        return {"skipped": 1}
    m.ANSWERS_LOST.labels(call.provider).inc()
    m.NATIVE_CALLS.labels(call.provider, "lost").inc()
    log.warning(
        "answer lost: the call may have been charged",
        extra={"code": native.POSSIBLY_CHARGED, "action": outcome.action, "error": why},
    )
    if outcome.action == "retry" and task is not None:
        raise task.retry(args=[call.job_id], countdown=0, max_retries=None)
    return {"lost": 1, "action": outcome.action}
