"""The native (synchronous) call's crash-safe protocol (`remixq.native`, `worker.native`) on
PostgreSQL, against the real simulator's Ideogram endpoint served on a free port: the call is
recorded before it is sent, a lost answer marks the job possibly charged and follows the
documented policy, a claim that expired mid-call is a lost answer, a replayed answer stores
nothing twice, a 422 fails the job with Ideogram's message and a 429 retries.

The task runs eagerly under a request of our own, as in test_submission_policy, so that a retry
raises Celery's `Retry` instead of sending a message.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
from celery import Celery, Task
from celery.exceptions import Retry
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from remixq import metrics as m
from remixq import native
from remixq.db import make_engine, transaction, utcnow
from remixq.models import Image, Job, WebhookEvent
from remixq.pricing import PriceTable
from remixq.providers.ideogram.client import RemixAnswer, RemixItem
from simulator.config import SimulatorConfig
from tests.support.images import png_bytes
from tests.support.simulator import LiveSimulator, wait_for
from tests.support.worker import worker_settings
from worker.app import create_celery
from worker.names import NATIVE_TASK
from worker.periodic import relay_lost_jobs
from worker.ratelimit import RedisLimit
from worker.runtime import Runtime

MAX_RETRIES = 2
TIMEOUT = 2.0  # REMIXQ_IDEOGRAM_TIMEOUT: a held answer is lost after this
PRICE_TURBO = PriceTable.default().price("ideogram-v3-remix", "TURBO")  # 0.03 USD per image


@pytest.fixture(scope="module")
def simulator() -> Iterator[LiveSimulator]:
    served = LiveSimulator(SimulatorConfig(api_key="ideo-test-key")).start()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@dataclass
class Native:
    runtime: Runtime
    app: Celery
    sim: LiveSimulator

    @property
    def task(self) -> Task:
        return self.app.tasks[NATIVE_TASK]

    def faults(self, **knobs: Any) -> None:
        answer = requests.put(f"{self.sim.url}/_control/faults", json=knobs, timeout=5)
        assert answer.status_code == 200, answer.text

    def stats(self) -> dict[str, Any]:
        found: dict[str, Any] = requests.get(f"{self.sim.url}/_control/stats", timeout=5).json()
        return found

    def new_job(self, num_images: int = 2, **fields: Any) -> Job:
        image = "data:image/png;base64," + base64.b64encode(png_bytes((8, 8))).decode()
        request = {
            "prompt": "a tea tin on a shelf",
            "image": image,
            "rendering_speed": "TURBO",
            "num_images": num_images,
            **fields,
        }
        with transaction(self.runtime.sessions) as session:
            job = Job(
                task_uuid=str(uuid.uuid4()),
                provider="ideogram",
                model="ideogram-v3-remix",
                request=request,
                number_results=num_images,
                status="queued",
                estimated_cost=PRICE_TURBO * num_images,
            )
            session.add(job)
            session.flush()
            job_id = job.id
        return self.job(job_id)

    def job(self, job_id: int) -> Job:
        with Session(self.runtime.engine) as session:
            found = session.get(Job, job_id)
            assert found is not None
            return found

    def images(self, job_id: int) -> list[Image]:
        with Session(self.runtime.engine) as session:
            return list(
                session.scalars(select(Image).where(Image.job_id == job_id).order_by(Image.id))
            )

    def attempt(self, job_id: int) -> dict[str, Any]:
        """One delivery of the job's message."""
        task = self.task
        task.push_request(
            id=f"test-{uuid.uuid4()}", args=[job_id], kwargs={}, retries=0, is_eager=True,
            called_directly=False,
        )  # fmt: skip
        try:
            result: dict[str, Any] = task.run(job_id)
            return result
        finally:
            task.pop_request()


@pytest.fixture
def worker(
    pg_engine: Engine, simulator: LiveSimulator, request: pytest.FixtureRequest
) -> Iterator[Native]:
    policy = getattr(request, "param", "fail")
    settings = worker_settings(
        pg_engine,
        ideogram_api_url=simulator.url,
        ideogram_api_key="ideo-test-key",
        ideogram_timeout=TIMEOUT,
        ideogram_lost_answer=policy,
        ideogram_rate_limit=1000.0,
        submit_max_retries=MAX_RETRIES,
        submit_backoff_base=1.0,
        image_local_hosts=(f"127.0.0.1:{simulator.server.port}",),
    )
    limit = RedisLimit.from_url(
        settings.redis_url or "",
        rate=1.0,
        max_in_flight=1,
        lease_seconds=1.0,
        prefix="remixq:provider:ideogram",
    )
    limit.redis.delete(*limit.keys)
    requests.post(f"{simulator.url}/_control/reset", timeout=5)
    runtime = Runtime(settings)
    app = create_celery(settings, runtime=runtime)
    found = Native(runtime, app, simulator)
    found.faults(  # whatever an earlier test of the module set
        ideogram_latency_ms=0,
        ideogram_429_rate=0.0,
        ideogram_5xx_rate=0.0,
        ideogram_422_rate=0.0,
        ideogram_lost_answer_rate=0.0,
        ideogram_unsafe_rate=0.0,
        retry_after_s=None,
    )
    try:
        yield found
    finally:
        app.close()
        runtime.dispose()
        limit.redis.delete(*limit.keys)


def ideogram_stats(stats: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = stats["providers"]["ideogram"]
    return found


def lost_count() -> float:
    return m.ANSWERS_LOST.labels("ideogram")._value.get()


def test_an_answer_is_stored_with_its_images_and_estimated_costs(worker: Native) -> None:
    job = worker.new_job(num_images=2, seed=42)

    result = worker.attempt(job.id)

    assert result["stored"] == 2
    after = worker.job(job.id)
    assert (after.status, after.attempts, after.results_received) == ("completed", 1, 2)
    assert after.call_sent_at is None and after.lost_answers == 0
    images = worker.images(job.id)
    assert [i.seed for i in images] == [42, 43]
    assert all(i.image_url and i.nsfw is False for i in images)
    assert [i.cost for i in images] == [PRICE_TURBO, PRICE_TURBO]
    assert {i.raw["resolution"] for i in images} == {"1024x1024"}
    assert [i.image_uuid for i in images] == [
        native.image_uuid(job.task_uuid, 1, index) for index in range(2)
    ]
    with Session(worker.runtime.engine) as session:
        kept = session.scalars(
            select(WebhookEvent).where(WebhookEvent.task_uuid == job.task_uuid)
        ).all()
    assert [(e.source, e.status) for e in kept] == [("sync", "processed")]
    assert ideogram_stats(worker.stats())["charged"] == 1


def test_the_call_is_recorded_before_it_is_sent(worker: Native) -> None:
    worker.faults(ideogram_latency_ms=1500)
    job = worker.new_job(num_images=1)
    seen: dict[str, Any] = {}

    def run() -> None:
        seen["result"] = worker.attempt(job.id)

    thread = threading.Thread(target=run)
    thread.start()
    # While the simulator generates, the call is committed as sent under the job's claim.
    in_flight = wait_for(
        lambda: (lambda j: j if j.call_sent_at is not None else None)(worker.job(job.id)),
        timeout=10,
    )
    assert ideogram_stats(worker.stats())["charged"] == 0  # the answer is not made yet
    assert (in_flight.status, in_flight.attempts) == ("submitting", 1)
    assert in_flight.claimed_at is not None and in_flight.call_sent_at >= in_flight.claimed_at
    thread.join(timeout=30)
    assert seen["result"]["stored"] == 1
    assert worker.job(job.id).status == "completed"


def test_a_lost_answer_marks_the_job_possibly_charged_and_fails_it(worker: Native) -> None:
    worker.faults(ideogram_lost_answer_rate=1.0, ideogram_lost_answer_mode="hold")
    job = worker.new_job()
    before = lost_count()

    result = worker.attempt(job.id)

    assert result == {"lost": 1, "action": "failed"}
    after = worker.job(job.id)
    assert (after.status, after.error_code, after.lost_answers) == (
        "failed", "possiblyCharged", 1
    )  # fmt: skip
    assert "may have been charged" in (after.error_message or "")
    assert after.call_sent_at is None
    assert worker.images(job.id) == []
    assert ideogram_stats(worker.stats())["charged"] == 1  # the provider did the work
    assert lost_count() == before + 1


@pytest.mark.parametrize("worker", ["retry"], indirect=True)
def test_with_the_retry_policy_a_lost_answer_is_called_again(worker: Native) -> None:
    worker.faults(ideogram_lost_answer_rate=1.0, ideogram_lost_answer_mode="close")
    job = worker.new_job(num_images=1)

    with pytest.raises(Retry) as retried:
        worker.attempt(job.id)

    assert retried.value.sig is not None and retried.value.sig.args == (job.id,)
    waiting = worker.job(job.id)
    assert (waiting.status, waiting.error_code, waiting.lost_answers) == (
        "queued", "possiblyCharged", 1
    )  # fmt: skip
    worker.faults(ideogram_lost_answer_rate=0.0)
    assert worker.attempt(job.id)["stored"] == 1
    done = worker.job(job.id)
    assert (done.status, done.attempts, done.lost_answers) == ("completed", 2, 1)
    # Paid twice, knowingly: the policy says so, and the job counts the lost answer.
    assert ideogram_stats(worker.stats())["charged"] == 2
    assert [i.image_uuid for i in worker.images(job.id)] == [native.image_uuid(job.task_uuid, 2, 0)]


def _died_mid_call(worker: Native, job: Job) -> None:
    """The job as a worker that died mid-call leaves it: claimed, its call sent, its lease
    over."""
    lease = worker.runtime.settings.native_claim_lease_seconds
    long_ago = utcnow() - timedelta(seconds=lease + 5)
    with transaction(worker.runtime.sessions) as session:
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(status="submitting", attempts=1, claimed_at=long_ago, call_sent_at=long_ago)
        )


def test_a_claim_that_expired_mid_call_is_a_lost_answer(worker: Native) -> None:
    job = worker.new_job()
    _died_mid_call(worker, job)
    calls = ideogram_stats(worker.stats())["calls"]

    # The message comes back (late ack): the claim finds the call sent, and sends nothing.
    assert worker.attempt(job.id) == {"lost": 1, "action": "failed"}

    after = worker.job(job.id)
    assert (after.status, after.error_code, after.lost_answers) == (
        "failed", "possiblyCharged", 1
    )  # fmt: skip
    assert ideogram_stats(worker.stats())["calls"] == calls  # no second call
    assert worker.attempt(job.id) == {"skipped": 1}  # and again: nothing more


def test_the_relay_treats_an_expired_native_call_as_a_lost_answer(worker: Native) -> None:
    job = worker.new_job()
    _died_mid_call(worker, job)
    before = lost_count()

    relay_lost_jobs(worker.app, worker.runtime)

    after = worker.job(job.id)
    assert (after.status, after.error_code, after.lost_answers) == (
        "failed", "possiblyCharged", 1
    )  # fmt: skip
    assert lost_count() == before + 1
    relay_lost_jobs(worker.app, worker.runtime)  # a second round changes nothing
    assert worker.job(job.id).lost_answers == 1


def test_a_replayed_answer_stores_nothing_twice(worker: Native) -> None:
    job = worker.new_job(num_images=2)
    with transaction(worker.runtime.sessions) as session:
        claim = native.claim(session, job_id=job.id, lease=timedelta(minutes=5))
    assert isinstance(claim, native.NativeClaim)
    answer = RemixAnswer(
        created="2026-12-02T05:00:00+00:00",
        items=(
            RemixItem(url="https://ideogram.ai/api/images/ephemeral/a.png", prompt="p",
                      resolution="1024x1024", is_image_safe=True, seed=1),
            RemixItem(url=None, prompt="p", resolution="1024x1024", is_image_safe=False, seed=2),
        ),
    )  # fmt: skip

    for _ in range(2):
        with transaction(worker.runtime.sessions) as session:
            outcome = native.ingest_answer(
                session, claim=claim, answer=answer, cost_per_image=PRICE_TURBO
            )
    assert (outcome.images_stored, outcome.duplicates) == (0, 2)

    images = worker.images(job.id)
    assert len(images) == 2
    safe, unsafe = images
    assert (safe.image_url, safe.nsfw) == ("https://ideogram.ai/api/images/ephemeral/a.png", False)
    assert (unsafe.image_url, unsafe.nsfw, unsafe.raw["isImageSafe"]) == (None, True, False)
    assert worker.job(job.id).status == "completed"
    with Session(worker.runtime.engine) as session:
        total = session.scalar(select(func.sum(Image.cost)).where(Image.job_id == job.id))
        kept = session.scalar(
            select(func.count()).select_from(WebhookEvent)
            .where(WebhookEvent.task_uuid == job.task_uuid)
        )  # fmt: skip
    assert total == 2 * PRICE_TURBO
    assert kept == 2  # both arrivals are in the inbox


def test_a_422_fails_the_job_with_the_providers_message(worker: Native) -> None:
    worker.faults(ideogram_422_rate=1.0)
    job = worker.new_job()

    assert worker.attempt(job.id) == {"failed": 1, "code": "safetyRejected"}

    after = worker.job(job.id)
    assert (after.status, after.error_code) == ("failed", "safetyRejected")
    assert after.error_message and "safety" in after.error_message.lower()
    assert after.lost_answers == 0 and worker.images(job.id) == []
    assert ideogram_stats(worker.stats())["charged"] == 0


def test_a_429_retries_with_backoff_and_charges_nothing(worker: Native) -> None:
    worker.faults(ideogram_429_rate=1.0, retry_after_s=3)
    job = worker.new_job()

    with pytest.raises(Retry) as retried:
        worker.attempt(job.id)

    assert retried.value.sig is not None and retried.value.sig.args == (job.id,)
    assert isinstance(retried.value.when, float) and retried.value.when >= 3
    after = worker.job(job.id)
    assert (after.status, after.error_code, after.lost_answers) == ("queued", "RateLimited", 0)
    assert after.call_sent_at is None
    worker.faults(ideogram_429_rate=0.0)
    assert worker.attempt(job.id)["stored"] == 2
    assert ideogram_stats(worker.stats())["charged"] == 1
    assert worker.job(job.id).status == "completed"


def test_a_429_past_the_jobs_retries_fails_it(worker: Native) -> None:
    worker.faults(ideogram_429_rate=1.0, retry_after_s=None)
    job = worker.new_job()
    for _ in range(MAX_RETRIES):
        with pytest.raises(Retry):
            worker.attempt(job.id)
        with transaction(worker.runtime.sessions) as session:  # its countdown is over
            session.execute(update(Job).where(Job.id == job.id).values(enqueued_at=utcnow()))

    assert worker.attempt(job.id) == {"failed": 1, "code": "retriesExhausted"}
    assert worker.job(job.id).attempts == MAX_RETRIES + 1


def test_a_runware_job_is_never_sent_to_ideogram(worker: Native) -> None:
    job = worker.new_job()
    with transaction(worker.runtime.sessions) as session:  # a stale message's id, now Runware's
        session.execute(update(Job).where(Job.id == job.id).values(provider="runware"))

    assert worker.attempt(job.id) == {"skipped": 1}

    after = worker.job(job.id)
    assert (after.status, after.attempts) == ("queued", 0)
    assert ideogram_stats(worker.stats())["calls"] == 0


def test_a_call_lost_after_its_job_was_cancelled_is_counted_and_stays_cancelled(
    worker: Native,
) -> None:
    job = worker.new_job()
    _died_mid_call(worker, job)
    with transaction(worker.runtime.sessions) as session:  # cancelled while the call ran
        session.execute(update(Job).where(Job.id == job.id).values(status="cancelled"))
    before = lost_count()

    relay_lost_jobs(worker.app, worker.runtime)

    after = worker.job(job.id)
    assert (after.status, after.lost_answers, after.call_sent_at) == ("cancelled", 1, None)
    assert lost_count() == before + 1
