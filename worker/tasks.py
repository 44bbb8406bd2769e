"""Celery tasks: submitting jobs to the provider, many tasks per request.

Runware takes an array of tasks per request with errors scoped per task, so one message carries
a batch of job ids and one POST submits them all. The task owns the transactions and the retry
policy; `remixq.jobs` does the state changes. The provider call happens outside any transaction,
between a short claim and a short record, and every job keeps its taskUUID across attempts.

The webhook URL is added here, at hand-off, from this worker's settings: the stored task has
none. A job's retry budget is its own (`Job.attempts`, counted at each claim), not its message's,
so a job relayed in a new message does not start a fresh set of retries. An answer refusing the
account (401/402/403) fails nothing: it pauses every worker and the jobs' campaigns, whose jobs
wait, pending, for `remixq resume` or the account probe (`worker.periodic`).
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta

from celery import Celery, Task

from remixq import jobs, logs
from remixq import metrics as m
from remixq.db import transaction, utcnow
from remixq.jobs import Claim
from remixq.providers.runware import (
    Ack,
    Forbidden,
    PaymentRequired,
    PermanentError,
    ProviderError,
    RateLimited,
    ServerError,
    TransientError,
    Unauthorized,
    is_transient_code,
)
from remixq.providers.runware.schemas.task import with_webhook
from worker.names import SUBMIT_TASK
from worker.observed import provider_call, waited_permit
from worker.ratelimit import LimitTimeout
from worker.runtime import Runtime

log = logging.getLogger("remixq.worker")

# Refusals of the account as a whole (no valid key, no credit, no permission): retrying the same
# jobs cannot help, and failing them would fail a whole campaign for want of a top-up.
ACCOUNT_REFUSED = (Unauthorized, PaymentRequired, Forbidden)
# How long every worker holds back after such a refusal: the campaigns' pause is what stops
# their jobs; this only keeps the batches already on the broker from each meeting the refusal,
# and stays short because, without Redis, `remixq resume` cannot lift it in the worker process.
ACCOUNT_PAUSE = 60.0
# The longest countdown a retry is given, whatever the backoff or a Retry-After ask: Celery holds
# a retry's message unacknowledged until it is due, and RabbitMQ closes the channel of a consumer
# that holds one past its consumer_timeout (30 min by default), Redis gives it to another worker
# past its visibility timeout (worker.app, an hour). A longer wait becomes several retries.
MAX_COUNTDOWN = 900.0


def backoff(retries: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with equal jitter and a cap; a provider's Retry-After is a floor."""
    delay = min(cap, base * 2**retries)
    delay = delay / 2 + random.uniform(0, delay / 2)
    return min(MAX_COUNTDOWN, max(delay, retry_after or 0.0))


def throttled(exc: TransientError) -> bool:
    """429, 503 and 504 mean the provider's queues are full: everyone should slow down."""
    return isinstance(exc, RateLimited) or (
        isinstance(exc, ServerError) and exc.status in (503, 504)
    )


def register(app: Celery, runtime: Runtime) -> None:
    # Not shared: a shared task would be added to every app made later in this process, still
    # bound to this app's runtime.
    @app.task(name=SUBMIT_TASK, bind=True, acks_late=True, max_retries=None, shared=False)
    def submit_jobs(self: Task, job_ids: list[int]) -> dict[str, int]:
        return submit(self, runtime, job_ids)


def submit(task: Task, runtime: Runtime, job_ids: Sequence[int]) -> dict[str, int]:
    # The permit comes before the claim, so a claim only ever covers the provider call itself
    # (bounded by the HTTP timeouts, well inside the claim lease), never a wait for the limit.
    try:
        with waited_permit(runtime):
            return _claim_and_submit(task, runtime, job_ids)
    except LimitTimeout:
        raise task.retry(args=[list(job_ids)], countdown=1, max_retries=None) from None


def _about(claims: Sequence[Claim]) -> dict[str, object]:
    """What a batch's log lines say it is about: its campaign when it has one, its job when
    it is one."""
    campaigns = {claim.campaign_id for claim in claims}
    fields: dict[str, object] = {}
    if len(campaigns) == 1:
        fields["campaign_id"] = campaigns.pop()
    if len(claims) == 1:
        fields |= {"job_id": claims[0].job_id, "task_uuid": claims[0].task_uuid}
    return fields


def _claim_and_submit(task: Task, runtime: Runtime, job_ids: Sequence[int]) -> dict[str, int]:
    lease = timedelta(seconds=runtime.settings.claim_lease_seconds)
    with transaction(runtime.sessions) as session:
        claims = jobs.claim(session, job_ids=job_ids, lease=lease)
    if not claims:
        log.info("no job claimable (taken, done or held)", extra={"jobs": len(job_ids)})
        return {"skipped": len(job_ids)}
    with logs.bound(**_about(claims)):
        return _submit_claimed(task, runtime, claims)


def _submit_claimed(task: Task, runtime: Runtime, claims: list[Claim]) -> dict[str, int]:
    url_for = runtime.webhook_url_for
    tasks = [with_webhook(claim.task, url_for(claim.task_uuid)) for claim in claims]
    try:
        with provider_call(runtime, "submit"):
            outcomes = runtime.client.submit(tasks)
    except LimitTimeout as exc:  # no turn at the rate: nothing was sent
        failed = _retry_later(
            task, runtime, claims, code="rateLimitWait", message=str(exc), retry_after=None
        )
        return {"failed": failed}
    except ACCOUNT_REFUSED as exc:
        return {"held": _pause_account(runtime, claims, exc)}
    except TransientError as exc:
        if throttled(exc):
            m.LIMIT_PAUSES.labels("throttled").inc()
            runtime.limit.pause(exc.retry_after)
        failed = _retry_later(
            task,
            runtime,
            claims,
            code=type(exc).__name__,
            message=str(exc),
            retry_after=exc.retry_after,
        )
        return {"failed": failed}
    except PermanentError as exc:  # the whole request: a bad key, no credit, ...
        code = _request_code(exc)
        with transaction(runtime.sessions) as session:
            jobs.fail(
                session, job_ids=[claim.job_id for claim in claims], code=code, message=str(exc)
            )
        m.SUBMISSIONS.labels("failed", code).inc(len(claims))
        log.warning("provider refused the request", extra={"code": code, "jobs": len(claims)})
        return {"failed": len(claims)}
    return _record(task, runtime, claims, outcomes)


def _pause_account(runtime: Runtime, claims: list[Claim], exc: PermanentError) -> int:
    """The provider refused the account: pause every worker and the jobs' campaigns, and give
    the jobs back, pending, without an error and without spending an attempt."""
    code = _request_code(exc)
    m.LIMIT_PAUSES.labels("account").inc()
    runtime.limit.pause(ACCOUNT_PAUSE)
    job_ids = [claim.job_id for claim in claims]
    with transaction(runtime.sessions) as session:
        paused = jobs.pause_campaigns(session, job_ids=job_ids, reason=str(exc))
        held = jobs.hold(session, job_ids=job_ids)
    m.SUBMISSIONS.labels("held", code).inc(len(claims))
    log.warning(
        "the provider refused the account; submission paused until `remixq resume` or the "
        "account probe",
        extra={"code": code, "campaigns": ",".join(map(str, paused)) or "-", "jobs": held},
    )
    return held


def _request_code(exc: PermanentError) -> str:
    """The code a refused request is recorded with: the provider's, else its HTTP status."""
    return exc.errors[0].code if exc.errors else f"http{exc.status}"


def _record(
    task: Task, runtime: Runtime, claims: list[Claim], outcomes: dict[str, Ack | ProviderError]
) -> dict[str, int]:
    accepted, failed, again = [], [], []
    for claim in claims:
        outcome = outcomes.get(claim.task_uuid)
        if isinstance(outcome, Ack):
            accepted.append(claim)
        elif isinstance(outcome, ProviderError) and not is_transient_code(outcome.code):
            failed.append((claim, outcome))
        else:  # a transient per-task error, or a task the answer did not mention
            again.append(claim)
    with transaction(runtime.sessions) as session:
        jobs.record_accepted(session, job_ids=[claim.job_id for claim in accepted])
        for claim, error in failed:  # each with its own code and message
            jobs.fail(session, job_ids=[claim.job_id], code=error.code, message=error.message)
    m.SUBMISSIONS.labels("accepted", "").inc(len(accepted))
    for _, error in failed:
        m.SUBMISSIONS.labels("failed", error.code).inc()
    for claim in accepted:
        log.info(
            "submitted",
            extra={"job_id": claim.job_id, "task_uuid": claim.task_uuid, "attempt": claim.attempts},
        )
    for claim, error in failed:
        log.warning(
            "provider refused the task",
            extra={"job_id": claim.job_id, "task_uuid": claim.task_uuid, "code": error.code},
        )
    gave_up = 0
    if again:
        gave_up = _retry_later(
            task,
            runtime,
            again,
            code="transientTaskError",
            message="the provider could not take the task now",
            retry_after=None,
        )
    return {"submitted": len(accepted), "failed": len(failed) + gave_up}


def _retry_later(
    task: Task,
    runtime: Runtime,
    claims: list[Claim],
    *,
    code: str,
    message: str,
    retry_after: float | None,
) -> int:
    """Release the jobs and schedule another attempt with the same taskUUIDs (raises Retry),
    failing first those whose attempts are spent (returns how many failed when none is left).

    The budget is the job's: `REMIXQ_SUBMIT_MAX_RETRIES` retries after its first attempt,
    counted by its claims, whichever message carried them; the backoff grows with them too.
    """
    settings = runtime.settings
    budget = settings.submit_max_retries + 1
    spent: dict[int, list[int]] = defaultdict(list)
    again = []
    for claim in claims:
        if claim.attempts >= budget:
            spent[claim.attempts].append(claim.job_id)
        else:
            again.append(claim)
    if spent:
        with transaction(runtime.sessions) as session:
            for attempts, job_ids in spent.items():
                jobs.fail(
                    session,
                    job_ids=job_ids,
                    code="retriesExhausted",
                    # The cause's code at the end: remixq.failover reads it.
                    message=f"gave up after {attempts} attempts: {message} [{code}]",
                )
        m.SUBMISSIONS.labels("failed", "retriesExhausted").inc(sum(map(len, spent.values())))
        log.warning(
            "submission failed for good",
            extra={"jobs": sum(map(len, spent.values())), "error": message},
        )
    if not again:
        return sum(map(len, spent.values()))
    delay = backoff(
        max(claim.attempts for claim in again) - 1,
        base=settings.submit_backoff_base,
        cap=settings.submit_backoff_cap,
        retry_after=retry_after,
    )
    job_ids = [claim.job_id for claim in again]
    m.SUBMISSIONS.labels("retried", code).inc(len(job_ids))
    m.RETRIES.labels(code).inc(len(job_ids))
    with transaction(runtime.sessions) as session:
        jobs.release(
            session,
            job_ids=job_ids,
            code=code,
            message=message,
            retry_at=utcnow() + timedelta(seconds=delay),
        )
    log.info(
        "transient failure, retrying",
        extra={"jobs": len(job_ids), "delay": round(delay, 2), "error": message},
    )
    raise task.retry(args=[job_ids], countdown=delay, max_retries=None)
