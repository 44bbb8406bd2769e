"""Celery tasks: submitting one job to the provider.

The task owns the transactions and the retry policy; `remixq.jobs` does the state changes. The
provider call happens outside any transaction, between a short claim and a short record.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from celery import Celery, Task

from remixq import jobs
from remixq.db import transaction, utcnow
from remixq.providers.runware import (
    PermanentError,
    RateLimited,
    ServerError,
    TaskRejected,
    TransientError,
)
from worker import periodic
from worker.app import SUBMIT_TASK
from worker.ratelimit import LimitTimeout
from worker.runtime import Runtime

log = logging.getLogger("remixq.worker")


def backoff(retries: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with equal jitter and a cap; a provider's Retry-After is a floor."""
    delay = min(cap, base * 2**retries)
    delay = delay / 2 + random.uniform(0, delay / 2)
    return max(delay, retry_after or 0.0)


def throttled(exc: TransientError) -> bool:
    """429, 503 and 504 mean the provider's queues are full: everyone should slow down."""
    return isinstance(exc, RateLimited) or (
        isinstance(exc, ServerError) and exc.status in (503, 504)
    )


def register(app: Celery) -> None:
    runtime = Runtime(app.remixq_settings)
    app.remixq_runtime = runtime

    @app.task(name=SUBMIT_TASK, bind=True, acks_late=True, max_retries=None)
    def submit_job(self: Task, job_id: int) -> str:
        return submit(self, runtime, job_id)

    periodic.register(app, runtime)


def submit(task: Task, runtime: Runtime, job_id: int) -> str:
    # The permit comes before the claim, so a claim only ever covers the provider call itself
    # (bounded by the HTTP timeouts, well inside the claim lease), never a wait for the limit.
    try:
        with runtime.limit.permit():
            return _claim_and_submit(task, runtime, job_id)
    except LimitTimeout:
        raise task.retry(countdown=1, max_retries=None) from None


def _claim_and_submit(task: Task, runtime: Runtime, job_id: int) -> str:
    settings = runtime.settings
    lease = timedelta(seconds=settings.claim_lease_seconds)
    with transaction(runtime.sessions) as session:
        claim = jobs.claim(session, job_id=job_id, lease=lease)
    if claim is None:
        log.info("job not claimable (taken, done or held)", extra={"job_id": job_id})
        return "skipped"
    context: dict[str, Any] = {
        "job_id": job_id,
        "task_uuid": claim.task_uuid,
        "attempt": claim.attempts,
    }
    try:
        ack = runtime.client.submit_one(claim.task)
    except TransientError as exc:
        if throttled(exc):
            runtime.limit.pause(exc.retry_after)
        retries = task.request.retries
        if retries >= settings.submit_max_retries:
            with transaction(runtime.sessions) as session:
                jobs.fail(
                    session,
                    job_id=job_id,
                    code="retriesExhausted",
                    message=f"gave up after {retries + 1} attempts: {exc}",
                )
            log.warning("submission failed for good", extra={**context, "error": str(exc)})
            return "failed"
        delay = backoff(
            retries,
            base=settings.submit_backoff_base,
            cap=settings.submit_backoff_cap,
            retry_after=exc.retry_after,
        )
        with transaction(runtime.sessions) as session:
            jobs.release(
                session,
                job_id=job_id,
                code=type(exc).__name__,
                message=str(exc),
                retry_at=utcnow() + timedelta(seconds=delay),
            )
        log.info(
            "transient failure, retrying",
            extra={**context, "delay": round(delay, 2), "error": str(exc)},
        )
        raise task.retry(countdown=delay, max_retries=None) from None
    except TaskRejected as exc:
        with transaction(runtime.sessions) as session:
            jobs.fail(session, job_id=job_id, code=exc.error.code, message=exc.error.message)
        log.warning("provider refused the task", extra={**context, "code": exc.error.code})
        return "failed"
    except PermanentError as exc:
        code = exc.errors[0].code if exc.errors else f"http{exc.status}"
        with transaction(runtime.sessions) as session:
            jobs.fail(session, job_id=job_id, code=code, message=str(exc))
        log.warning("provider refused the request", extra={**context, "code": code})
        return "failed"
    with transaction(runtime.sessions) as session:
        jobs.record_accepted(session, job_id=job_id)
    log.info("submitted", extra={**context, "already_submitted": ack.already_submitted})
    return "submitted"
