"""The worker's submission policy (`worker.tasks`), one attempt at a time: a real Celery app and
its registered task, a real `RunwareClient` over the shipped fake transport, real databases (both
backends) and the real Redis-backed provider limit.

The task runs eagerly under a request of our own (`is_eager`), so that `task.retry` raises
Celery's `Retry` carrying the countdown and the arguments of the next attempt instead of sending
a message; the tests assert on that and on what each job holds in the database afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery, Task
from celery.exceptions import Retry
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remixq import jobs
from remixq.config import Settings, load_settings
from remixq.db import transaction, utcnow
from remixq.examples import campaign_lines
from remixq.models import Job
from remixq.providers.runware import parse_request
from remixq.providers.runware.testing import Answer, FakeTransport, reply
from tests.support.databases import REDIS_URL
from worker.app import create_celery
from worker.names import SUBMIT_TASK
from worker.ratelimit import LimitTimeout, RedisLimit
from worker.runtime import Runtime

MAX_RETRIES = 3
BACKOFF_BASE = 1.0  # the first retry waits between half of this and all of it


@dataclass
class Worker:
    """One worker process's pieces, wired as `remixq worker` wires them."""

    settings: Settings
    runtime: Runtime
    app: Celery
    transport: FakeTransport

    @property
    def task(self) -> Task:
        return self.app.tasks[SUBMIT_TASK]

    def new_jobs(self, count: int) -> list[Job]:
        """`count` queued jobs of a campaign of their own, in id order."""
        new = [jobs.NewJob(parse_request(line)) for line in campaign_lines(count)]
        with transaction(self.runtime.sessions) as session:
            campaign = jobs.get_or_create_campaign(
                session, name=f"policy-{utcnow().timestamp()}", source=None
            )
            ids = jobs.create_jobs(
                session,
                campaign=campaign,
                new_jobs=new,
                webhook_url_for=lambda task_uuid: f"https://hooks.test/{task_uuid}",
            )
            jobs.mark_enqueued(session, job_ids=ids)
        return self.jobs(ids)

    def jobs(self, ids: list[int]) -> list[Job]:
        with Session(self.runtime.engine) as session:
            return list(session.scalars(select(Job).where(Job.id.in_(ids)).order_by(Job.id)))

    def answer(self, *script: Answer | BaseException) -> None:
        self.transport.script.extend(script)

    def attempt(self, job_ids: list[int], *, retries: int = 0) -> dict[str, int]:
        """One delivery of the submission message, as the `retries`th retry."""
        task = self.task
        task.push_request(
            id=f"test-{retries}",
            args=[job_ids],
            kwargs={},
            retries=retries,
            is_eager=True,
            called_directly=False,
        )
        try:
            result: dict[str, int] = task.run(job_ids)
            return result
        finally:
            task.pop_request()


def ack(task_uuid: str) -> dict[str, Any]:
    return {"taskType": "imageInference", "taskUUID": task_uuid}


def error(code: str, task_uuid: str | None = None, message: str = "refused") -> dict[str, Any]:
    found: dict[str, Any] = {"code": code, "message": message}
    if task_uuid is not None:
        found |= {"taskUUID": task_uuid, "taskType": "imageInference"}
    return found


def other_worker_limit(settings: Settings) -> RedisLimit:
    """The provider limit as another worker process sees it (same Redis, same keys)."""
    return RedisLimit.from_url(
        REDIS_URL,
        rate=settings.rate_limit,
        max_in_flight=settings.max_in_flight,
        lease_seconds=settings.claim_lease_seconds,
    )


@pytest.fixture
def worker(engine: Engine) -> Iterator[Worker]:
    settings = load_settings(
        database_url=engine.url.render_as_string(hide_password=False),
        broker_url="memory://",
        redis_url=REDIS_URL,
        runware_api_url="https://api.runware.test/v1",
        runware_api_key="rw-test-key",
        webhook_secret="test-secret",
        submit_max_retries=MAX_RETRIES,
        submit_backoff_base=BACKOFF_BASE,
        submit_backoff_cap=60.0,
        rate_limit=1000.0,
    )
    limit = other_worker_limit(settings)
    limit.redis.delete(*limit.keys)  # no pause or slot left by another test
    transport = FakeTransport()
    runtime = Runtime(settings, http_session=transport.session)
    app = create_celery(settings, runtime=runtime)
    try:
        yield Worker(settings, runtime, app, transport)
    finally:
        app.close()
        runtime.dispose()
        limit.redis.delete(*limit.keys)


def pause_left(settings: Settings) -> float:
    """Seconds left of the pause that every worker's limit honours (0: none)."""
    limit = other_worker_limit(settings)
    return max(0, int(limit.redis.pttl(limit.keys[2]))) / 1000


def test_all_accepted(worker: Worker) -> None:
    first, second = worker.new_jobs(2)
    worker.answer(reply(200, {"data": [ack(first.task_uuid), ack(second.task_uuid)]}))

    assert worker.attempt([first.id, second.id]) == {"submitted": 2, "failed": 0}

    assert [t["taskUUID"] for t in worker.transport.body()] == [first.task_uuid, second.task_uuid]
    for job in worker.jobs([first.id, second.id]):
        assert job.status == "submitted"
        assert job.attempts == 1
        assert job.submitted_at is not None
        assert job.error_code is None
    assert pause_left(worker.settings) == 0


def test_a_per_task_permanent_error_fails_that_job_only(worker: Worker) -> None:
    good, bad = worker.new_jobs(2)
    worker.answer(
        reply(
            200,
            {
                "data": [ack(good.task_uuid)],
                "errors": [error("invalidReferenceImage", bad.task_uuid, "no such image")],
            },
        )
    )

    assert worker.attempt([good.id, bad.id]) == {"submitted": 1, "failed": 1}

    good, bad = worker.jobs([good.id, bad.id])
    assert good.status == "submitted"
    assert (bad.status, bad.error_code, bad.error_message) == (
        "failed",
        "invalidReferenceImage",
        "no such image",
    )
    assert bad.finished_at is not None


def test_a_per_task_transient_error_retries_that_job_with_its_task_uuid(worker: Worker) -> None:
    good, busy = worker.new_jobs(2)
    worker.answer(
        reply(
            200,
            {"data": [ack(good.task_uuid)], "errors": [error("timeoutProvider", busy.task_uuid)]},
        )
    )

    with pytest.raises(Retry) as retried:
        worker.attempt([good.id, busy.id])

    assert retried.value.sig is not None
    assert retried.value.sig.args == ([busy.id],)  # only the job that needs another attempt
    assert isinstance(retried.value.when, float)
    assert BACKOFF_BASE / 2 <= retried.value.when <= BACKOFF_BASE
    good_after, busy_after = worker.jobs([good.id, busy.id])
    assert good_after.status == "submitted"
    assert (busy_after.status, busy_after.error_code) == ("queued", "transientTaskError")
    assert busy_after.task_uuid == busy.task_uuid  # the same taskUUID on the next attempt
    assert busy_after.claimed_at is None
    assert busy_after.enqueued_at is not None
    assert busy_after.enqueued_at > utcnow()  # not before the retry is due
    assert pause_left(worker.settings) == 0  # one task's refusal does not slow everyone down


THROTTLED = [
    pytest.param(429, "RateLimited", id="429"),
    pytest.param(503, "ServerError", id="503"),
    pytest.param(504, "ServerError", id="504"),
]


@pytest.mark.parametrize(("status", "code"), THROTTLED)
def test_throttled_with_retry_after_pauses_everyone_and_retries_after_it(
    worker: Worker, status: int, code: str
) -> None:
    (job,) = worker.new_jobs(1)
    worker.answer(reply(status, {"errors": [error("busy")]}, headers={"Retry-After": "7"}))

    with pytest.raises(Retry) as retried:
        worker.attempt([job.id])

    assert retried.value.when == pytest.approx(7.0)  # Retry-After is a floor on the backoff
    assert retried.value.sig is not None
    assert retried.value.sig.args == ([job.id],)
    assert 6 < pause_left(worker.settings) <= 7
    other = other_worker_limit(worker.settings)
    with pytest.raises(LimitTimeout), other.permit(timeout=5):  # another worker is held back
        pass
    (job,) = worker.jobs([job.id])
    assert (job.status, job.error_code) == ("queued", code)
    assert job.enqueued_at is not None
    assert job.enqueued_at > utcnow() + timedelta(seconds=6)


@pytest.mark.parametrize(("status", "code"), THROTTLED)
def test_throttled_without_retry_after_pauses_everyone_briefly_and_backs_off(
    worker: Worker, status: int, code: str
) -> None:
    (job,) = worker.new_jobs(1)
    worker.answer(reply(status, {"errors": [error("busy")]}))

    with pytest.raises(Retry) as retried:
        worker.attempt([job.id])

    assert isinstance(retried.value.when, float)
    assert BACKOFF_BASE / 2 <= retried.value.when <= BACKOFF_BASE
    assert 0 < pause_left(worker.settings) <= 1  # the default pause
    (job,) = worker.jobs([job.id])
    assert (job.status, job.error_code) == ("queued", code)


def test_the_backoff_grows_with_the_retries(worker: Worker) -> None:
    (job,) = worker.new_jobs(1)
    worker.answer(reply(500, {"errors": [error("oops")]}))

    with pytest.raises(Retry) as retried:
        worker.attempt([job.id], retries=2)

    assert isinstance(retried.value.when, float)
    assert 4 * BACKOFF_BASE / 2 <= retried.value.when <= 4 * BACKOFF_BASE
    assert pause_left(worker.settings) == 0  # a 500 is not the provider asking to slow down


def test_retries_exhausted_fail_the_jobs(worker: Worker) -> None:
    first, second = worker.new_jobs(2)
    worker.answer(reply(503, {"errors": [error("busy")]}))

    assert worker.attempt([first.id, second.id], retries=MAX_RETRIES) == {"failed": 2}

    for job in worker.jobs([first.id, second.id]):
        assert (job.status, job.error_code) == ("failed", "retriesExhausted")
        assert job.error_message is not None
        assert job.error_message.startswith(f"gave up after {MAX_RETRIES + 1} attempts: HTTP 503")


def test_the_last_retry_is_still_attempted(worker: Worker) -> None:
    (job,) = worker.new_jobs(1)
    worker.answer(reply(503, {"errors": [error("busy")]}))

    with pytest.raises(Retry):
        worker.attempt([job.id], retries=MAX_RETRIES - 1)

    assert worker.jobs([job.id])[0].status == "queued"


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        pytest.param(402, {"errors": [error("insufficientCredits")]}, "insufficientCredits"),
        pytest.param(403, {}, "http403", id="403-without-errors"),
    ],
)
def test_a_request_level_permanent_error_fails_every_job(
    worker: Worker, status: int, body: dict[str, Any], code: str
) -> None:
    first, second = worker.new_jobs(2)
    worker.answer(reply(status, body))

    assert worker.attempt([first.id, second.id]) == {"failed": 2}

    for job in worker.jobs([first.id, second.id]):
        assert (job.status, job.error_code) == ("failed", code)
        assert job.error_message is not None
        assert f"HTTP {status}" in job.error_message
    assert pause_left(worker.settings) == 0


def test_a_task_missing_from_the_answer_is_retried(worker: Worker) -> None:
    answered, missing = worker.new_jobs(2)
    worker.answer(reply(200, {"data": [ack(answered.task_uuid)]}))

    with pytest.raises(Retry) as retried:
        worker.attempt([answered.id, missing.id])

    assert retried.value.sig is not None
    assert retried.value.sig.args == ([missing.id],)
    answered_after, missing_after = worker.jobs([answered.id, missing.id])
    assert answered_after.status == "submitted"
    assert (missing_after.status, missing_after.error_code) == ("queued", "transientTaskError")
    assert missing_after.task_uuid == missing.task_uuid


def test_conflict_task_uuid_means_already_submitted(worker: Worker) -> None:
    (job,) = worker.new_jobs(1)
    worker.answer(reply(400, {"errors": [error("conflictTaskUUID", job.task_uuid)]}))

    assert worker.attempt([job.id]) == {"submitted": 1, "failed": 0}

    (job,) = worker.jobs([job.id])
    assert job.status == "submitted"
    assert job.error_code is None


def test_a_job_already_taken_is_not_submitted_again(worker: Worker) -> None:
    (job,) = worker.new_jobs(1)
    worker.answer(reply(200, {"data": [ack(job.task_uuid)]}))
    assert worker.attempt([job.id]) == {"submitted": 1, "failed": 0}

    assert worker.attempt([job.id]) == {"skipped": 1}  # a duplicate message

    assert len(worker.transport.sent) == 1
