"""The worker's submission policy (`worker.tasks`), one attempt at a time: a real Celery app and
its registered task, a real `RunwareClient` over the shipped fake transport, real databases (both
backends) and the real Redis-backed provider limit.

The task runs eagerly under a request of our own (`is_eager`), so that `task.retry` raises
Celery's `Retry` carrying the countdown and the arguments of the next attempt instead of sending
a message; the tests assert on that and on what each job holds in the database afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, Task
from celery.exceptions import Retry
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from remixq import jobs, producing
from remixq.config import Settings
from remixq.db import transaction, utcnow
from remixq.examples import campaign_lines
from remixq.models import Campaign, Job
from remixq.providers.runware import parse_request
from remixq.providers.runware.testing import Answer, FakeTransport, reply
from remixq.reports import campaign_report
from remixq.security import webhook_url
from tests.support.webhooks import receiver_client, result
from tests.support.worker import other_worker_limit, worker_runtime, worker_settings
from worker.app import create_celery
from worker.names import SUBMIT_TASK
from worker.periodic import probe_account
from worker.ratelimit import LimitTimeout
from worker.runtime import Runtime
from worker.tasks import MAX_COUNTDOWN

MAX_RETRIES = 3
PUBLIC_URL = "https://hooks.example.test/rq"
SECRET = "test-secret"
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
        new = [producing.NewJob(parse_request(line)) for line in campaign_lines(count)]
        with transaction(self.runtime.sessions) as session:
            campaign = producing.get_or_create_campaign(
                session, name=f"policy-{utcnow().timestamp()}", source=None
            )
            ids = producing.create_jobs(session, campaign=campaign, new_jobs=new)
            jobs.mark_enqueued(session, job_ids=ids)
        return self.jobs(ids)

    def spend(self, job_ids: list[int], attempts: int) -> None:
        """Record `attempts` earlier attempts of the jobs (their claims so far)."""
        with transaction(self.runtime.sessions) as session:
            session.execute(update(Job).where(Job.id.in_(job_ids)).values(attempts=attempts))

    def campaign(self, job: Job) -> Campaign:
        with Session(self.runtime.engine) as session:
            found = session.get(Campaign, job.campaign_id)
            assert found is not None
            return found

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


@pytest.fixture
def worker(engine: Engine) -> Iterator[Worker]:
    settings = worker_settings(
        engine,
        public_url=PUBLIC_URL,
        webhook_secret=SECRET,
        submit_max_retries=MAX_RETRIES,
        submit_backoff_base=BACKOFF_BASE,
        submit_backoff_cap=60.0,
    )
    with worker_runtime(settings) as (runtime, transport):
        app = create_celery(settings, runtime=runtime)
        try:
            yield Worker(settings, runtime, app, transport)
        finally:
            app.close()


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


def test_a_long_retry_after_is_waited_in_several_countdowns_of_15_minutes_at_most(
    worker: Worker,
) -> None:
    """Celery holds a retry's message unacknowledged until it is due: RabbitMQ closes the
    channel of a consumer that holds one past its consumer_timeout (30 min by default)."""
    (job,) = worker.new_jobs(1)
    worker.answer(reply(429, {"errors": [error("busy")]}, headers={"Retry-After": "7200"}))
    with pytest.raises(Retry) as retried:
        worker.attempt([job.id])
    assert retried.value.when == MAX_COUNTDOWN == 900


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
    worker.spend([job.id], 2)  # this is its third attempt
    worker.answer(reply(500, {"errors": [error("oops")]}))

    with pytest.raises(Retry) as retried:
        worker.attempt([job.id])

    assert isinstance(retried.value.when, float)
    assert 4 * BACKOFF_BASE / 2 <= retried.value.when <= 4 * BACKOFF_BASE
    assert pause_left(worker.settings) == 0  # a 500 is not the provider asking to slow down


def test_retries_exhausted_fail_the_jobs(worker: Worker) -> None:
    first, second = worker.new_jobs(2)
    worker.spend([first.id, second.id], MAX_RETRIES)  # this is their last attempt
    worker.answer(reply(503, {"errors": [error("busy")]}))

    assert worker.attempt([first.id, second.id]) == {"failed": 2}

    for job in worker.jobs([first.id, second.id]):
        assert (job.status, job.error_code) == ("failed", "retriesExhausted")
        assert job.error_message is not None
        assert job.error_message.startswith(f"gave up after {MAX_RETRIES + 1} attempts: HTTP 503")


def test_the_last_retry_is_still_attempted(worker: Worker) -> None:
    (job,) = worker.new_jobs(1)
    worker.spend([job.id], MAX_RETRIES - 1)
    worker.answer(reply(503, {"errors": [error("busy")]}))

    with pytest.raises(Retry):
        worker.attempt([job.id])

    assert worker.jobs([job.id])[0].status == "queued"


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


def test_the_webhook_url_is_the_workers_own(worker: Worker, tmp_path: Path) -> None:
    """Regression: the webhook URL was written into each job by the submitting process, from
    its environment; jobs stored elsewhere (or by an earlier version, with a URL and token of
    another deployment) got webhooks the receiver refused. The worker now adds its own."""
    fresh, legacy = worker.new_jobs(2)
    assert "webhookURL" not in fresh.request  # a stored task carries no delivery detail
    with transaction(worker.runtime.sessions) as session:
        wrong = {**legacy.request, "webhookURL": f"http://laptop:8701/webhooks/runware/{'0' * 64}"}
        session.execute(update(Job).where(Job.id == legacy.id).values(request=wrong))
    worker.answer(reply(200, {"data": [ack(fresh.task_uuid), ack(legacy.task_uuid)]}))

    assert worker.attempt([fresh.id, legacy.id]) == {"submitted": 2, "failed": 0}

    sent = {task["taskUUID"]: task["webhookURL"] for task in worker.transport.body()}
    with receiver_client(worker.runtime.engine, tmp_path, secret=SECRET) as receiver:
        for job in (fresh, legacy):
            url = sent[job.task_uuid]
            assert url == webhook_url(PUBLIC_URL, SECRET.encode(), job.task_uuid)
            answer = receiver.post(url.removeprefix(PUBLIC_URL), json=result(job.task_uuid))
            assert answer.status_code == 200, answer.get_data(as_text=True)
    assert [job.results_received for job in worker.jobs([fresh.id, legacy.id])] == [1, 1]


def test_a_relayed_job_keeps_its_retry_budget(worker: Worker) -> None:
    """Regression: the budget was the message's (`request.retries`), so a job published again in
    a new message (by the relay) started a fresh set of retries. Every delivery here is a new
    message; the job still fails at its budget of MAX_RETRIES retries."""
    (job,) = worker.new_jobs(1)
    worker.answer(*[reply(503, {"errors": [error("busy")]})] * (MAX_RETRIES + 1))

    for attempt in range(1, MAX_RETRIES + 1):
        with pytest.raises(Retry) as retried:
            worker.attempt([job.id], retries=0)
        assert isinstance(retried.value.when, float)
        base = BACKOFF_BASE * 2 ** (attempt - 1)  # the backoff grows with the job's attempts
        assert base / 2 <= retried.value.when <= base
        assert worker.jobs([job.id])[0].attempts == attempt

    assert worker.attempt([job.id], retries=0) == {"failed": 1}

    (job,) = worker.jobs([job.id])
    assert (job.status, job.error_code, job.attempts) == ("failed", "retriesExhausted", 4)
    assert job.error_message is not None
    assert job.error_message.startswith(f"gave up after {MAX_RETRIES + 1} attempts")
    assert len(worker.transport.sent) == MAX_RETRIES + 1


ACCOUNT_REFUSALS = [
    pytest.param(401, {"errors": [error("invalidApiKey")]}, "invalidApiKey", id="401"),
    pytest.param(402, {"errors": [error("insufficientCredits")]}, "insufficientCredits", id="402"),
    pytest.param(403, {}, "HTTP 403", id="403-without-errors"),
]


@pytest.mark.parametrize(("status", "body", "reason"), ACCOUNT_REFUSALS)
def test_an_account_refusal_mid_campaign_pauses_it_and_fails_nothing(
    worker: Worker, status: int, body: dict[str, Any], reason: str
) -> None:
    """Regression: a request-level 401/402/403 failed every claimed job (and every following
    batch the same way). Now the accepted job stays accepted, the refused batch and the queued
    rest wait pending, unspent, the campaign is paused with the provider's words, every worker
    holds back, and nothing of the campaign is claimed while it is paused."""
    accepted, first, second, queued = worker.new_jobs(4)
    worker.answer(reply(200, {"data": [ack(accepted.task_uuid)]}))
    assert worker.attempt([accepted.id]) == {"submitted": 1, "failed": 0}
    worker.answer(reply(status, body))

    assert worker.attempt([first.id, second.id]) == {"held": 2}

    after = worker.jobs([accepted.id, first.id, second.id, queued.id])
    assert after[0].status == "submitted"
    for job in after[1:]:
        assert (job.status, job.error_code, job.attempts) == ("pending", None, 0)
        assert job.finished_at is None
    campaign = worker.campaign(accepted)
    assert campaign.paused_at is not None
    assert campaign.pause_reason is not None
    assert f"HTTP {status}" in campaign.pause_reason and reason in campaign.pause_reason
    assert 50 < pause_left(worker.settings) <= 60  # every worker holds back
    report = campaign_report_of(worker, campaign)
    assert report["paused_at"] == campaign.paused_at.isoformat()
    assert report["pause_reason"] == campaign.pause_reason

    limit = other_worker_limit(worker.settings)
    limit.redis.delete(limit.keys[2])  # the shared pause over; the campaign's is not
    assert worker.attempt([queued.id, first.id]) == {"skipped": 2}
    assert len(worker.transport.sent) == 2  # nothing sent for a paused campaign


def test_resume_hands_the_waiting_jobs_back(worker: Worker) -> None:
    first, second = worker.new_jobs(2)
    worker.answer(reply(402, {"errors": [error("insufficientCredits")]}))
    assert worker.attempt([first.id]) == {"held": 1}

    with transaction(worker.runtime.sessions) as session:
        campaigns, job_ids = jobs.resume_campaigns(session, campaign_id=first.campaign_id)
    assert campaigns == [first.campaign_id]
    assert job_ids == [first.id, second.id]
    assert worker.campaign(first).paused_at is None
    worker.runtime.limit.resume()  # as `remixq resume` does
    assert pause_left(worker.settings) == 0
    worker.answer(reply(200, {"data": [ack(first.task_uuid), ack(second.task_uuid)]}))
    assert worker.attempt([first.id, second.id]) == {"submitted": 2, "failed": 0}


def test_the_account_probe_resumes_once_the_account_is_usable(worker: Worker) -> None:
    """The probe under beat: a getResponse for an unknown task; 402 keeps the pause, an answer
    that does not refuse the account resumes every paused campaign and republishes its jobs."""
    (job,) = worker.new_jobs(1)
    worker.answer(reply(402, {"errors": [error("insufficientCredits")]}))
    assert worker.attempt([job.id]) == {"held": 1}

    worker.answer(reply(402, {"errors": [error("insufficientCredits")]}))
    assert probe_account(worker.app, worker.runtime) == 0
    assert worker.campaign(job).paused_at is not None
    assert worker.transport.body()[0]["taskType"] == "getResponse"

    # The next answer refuses the request (an unknown task), not the account.
    worker.answer(reply(400, {"errors": [error("unknownTask", str(uuid.uuid4()))]}))
    assert probe_account(worker.app, worker.runtime) >= 1  # other tests' campaigns resume too
    assert worker.campaign(job).paused_at is None
    assert worker.jobs([job.id])[0].status == "queued"
    assert pause_left(worker.settings) == 0


def test_the_account_probe_asks_nothing_while_no_campaign_is_paused(worker: Worker) -> None:
    assert probe_account(worker.app, worker.runtime) == 0
    assert worker.transport.sent == []


def campaign_report_of(worker: Worker, campaign: Campaign) -> dict[str, Any]:
    with Session(worker.runtime.engine) as session:
        found = session.get(Campaign, campaign.id)
        assert found is not None
        return campaign_report(session, found)
