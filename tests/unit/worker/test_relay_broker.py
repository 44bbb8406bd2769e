"""The relay against a real broker (`worker.periodic.relay_lost_jobs`, `worker.broker`): a
backlog whose messages wait in the queue, or that a worker holds, is not published again; once
the broker has lost its messages, it is.

A real Celery app over Redis (the test Redis db) and over the embedded default's SQLite
transport; no worker consumes, so the messages stay where the test puts them. A held message is
taken the way a worker takes one, unacknowledged, and its connection stays open meanwhile (a
closed kombu channel gives its unacknowledged messages back to the queue).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery import Celery
from kombu import Connection
from kombu.transport.virtual import Message
from sqlalchemy import Engine, create_engine, select, text, update
from sqlalchemy.orm import Session

from remixq import producing
from remixq.config import Settings
from remixq.db import transaction, utcnow
from remixq.examples import campaign_lines
from remixq.models import Job
from remixq.providers.runware import parse_request
from remixq.states import JobStatus
from tests.support.databases import REDIS_URL
from tests.support.worker import worker_settings
from worker.app import create_celery
from worker.broker import messages_held
from worker.names import PERIODIC_QUEUE, QUEUE
from worker.periodic import relay_lost_jobs
from worker.producer import enqueue
from worker.runtime import Runtime

BATCH = 10
STALE = 60.0  # REMIXQ_RELAY_QUEUED_STALE, seconds
REDIS_KEYS = (QUEUE, PERIODIC_QUEUE, "unacked", "unacked_index", "unacked_mutex")


@dataclass
class Relay:
    settings: Settings
    runtime: Runtime
    app: Celery
    transport: str
    broker_file: Path | None

    def backlog(self, count: int, *, minutes_ago: float = 30) -> list[int]:
        """`count` jobs of a new campaign handed to the broker, as `remixq submit` hands them,
        `minutes_ago` (their messages have waited since)."""
        new = [producing.NewJob(parse_request(line)) for line in campaign_lines(count)]
        with transaction(self.runtime.sessions) as session:
            campaign = producing.get_or_create_campaign(
                session, name=f"backlog-{time.time_ns()}", source=None
            )
            ids = producing.create_jobs(session, campaign=campaign, new_jobs=new)
        enqueue(self.app, self.runtime.sessions, ids, batch=BATCH)
        with transaction(self.runtime.sessions) as session:
            session.execute(
                update(Job)
                .where(Job.id.in_(ids))
                .values(enqueued_at=utcnow() - timedelta(minutes=minutes_ago))
            )
        return sorted(ids)

    def messages(self) -> int:
        held = messages_held(self.app, QUEUE, held_within=timedelta(seconds=STALE))
        assert held is not None
        return held

    def purge(self) -> None:
        """What a broker restarted without persistence does to the queue."""
        with self.app.connection_for_write() as connection:
            connection.default_channel.queue_purge(QUEUE)

    def statuses(self, ids: list[int]) -> set[str]:
        with Session(self.runtime.engine) as session:
            return set(session.scalars(select(Job.status).where(Job.id.in_(ids))))

    def age_deliveries(self, connection: Connection, message: Message) -> None:
        """Make a held message look delivered long ago, as if its worker died holding it."""
        long_ago = time.time() - 10 * STALE
        if self.transport == "redis":
            connection.default_channel.client.zadd(
                "unacked_index", {message.delivery_tag: long_ago}
            )
            return
        assert self.broker_file is not None
        broker = create_engine(f"sqlite:///{self.broker_file}")
        try:
            with broker.begin() as db:
                db.execute(
                    text(
                        "UPDATE kombu_message SET timestamp = :at"
                        " WHERE visible = 0 AND payload LIKE :task_id"
                    ),
                    {
                        "at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(long_ago)),
                        "task_id": f"%{message.headers['id']}%",
                    },
                )
        finally:
            broker.dispose()


def clear_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.delete(*REDIS_KEYS)
    finally:
        client.close()


def park_other_open_jobs(engine: Engine) -> None:
    """Open jobs other tests left committed in the shared test database: no broker holds their
    messages, so they would count as lost here."""
    open_ = [JobStatus.PENDING.value, JobStatus.QUEUED.value, JobStatus.SUBMITTING.value]
    with Session(engine) as session, session.begin():
        session.execute(update(Job).where(Job.status.in_(open_)).values(status="failed"))


def relay_settings(engine: Engine, data_dir: Path, broker_url: str) -> Settings:
    return worker_settings(
        engine,
        broker_url=broker_url,
        data_dir=data_dir,
        public_url="https://hooks.example.test/rq",
        submit_batch=BATCH,
        relay_queued_stale=STALE,
    )


@pytest.fixture(params=["redis", "embedded"])
def relay(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path) -> Iterator[Relay]:
    transport = str(request.param)
    broker_file = tmp_path / "broker.sqlite" if transport == "embedded" else None
    broker_url = REDIS_URL if broker_file is None else f"sqla+sqlite:///{broker_file}"
    settings = relay_settings(engine, tmp_path, broker_url)
    park_other_open_jobs(engine)
    clear_redis()
    runtime = Runtime(settings)
    app = create_celery(settings, runtime=runtime)
    try:
        yield Relay(settings, runtime, app, transport, broker_file)
    finally:
        park_other_open_jobs(engine)
        clear_redis()
        runtime.engine.dispose()


def test_a_backlog_waiting_in_the_queue_is_not_published_again(relay: Relay) -> None:
    backlog = relay.backlog(25)  # three messages, waiting for half an hour
    assert relay.messages() == 3
    assert relay_lost_jobs(relay.app, relay.runtime) == 0
    assert relay.messages() == 3  # no duplicate
    assert relay.statuses(backlog) == {"queued"}


def test_a_backlog_whose_messages_are_gone_is_published_again(relay: Relay) -> None:
    backlog = relay.backlog(25)
    relay.purge()
    assert relay.messages() == 0
    assert relay_lost_jobs(relay.app, relay.runtime) == len(backlog)
    assert relay.messages() == 3
    assert relay_lost_jobs(relay.app, relay.runtime) == 0  # published: waiting again


def test_messages_a_worker_holds_account_for_their_jobs(relay: Relay) -> None:
    backlog = relay.backlog(25)
    with relay.app.connection_for_read() as connection:
        # A worker's prefetch, a late-acked run or a retry's countdown: taken, not acknowledged.
        message = connection.default_channel.basic_get(QUEUE, no_ack=False)
        assert message is not None
        held_jobs = sorted(message.decode()[0][0])
        assert held_jobs == backlog[:BATCH]  # first in, first out
        assert relay.messages() == 3  # two waiting, one held
        assert relay_lost_jobs(relay.app, relay.runtime) == 0

        # Held for longer than REMIXQ_RELAY_QUEUED_STALE: its worker is presumed dead. Two
        # messages carry 20 of the 25 queued jobs; the 5 oldest are published again.
        relay.age_deliveries(connection, message)
        assert relay.messages() == 2
        assert relay_lost_jobs(relay.app, relay.runtime) == 5
        with Session(relay.runtime.engine) as session:
            fresh = session.scalars(
                select(Job.id).where(
                    Job.id.in_(backlog), Job.enqueued_at > utcnow() - timedelta(minutes=1)
                )
            )
            assert sorted(fresh) == held_jobs[:5]


def test_a_finished_message_a_worker_took_does_not_hide_a_lost_one(relay: Relay) -> None:
    """The relay re-publishing a dead worker's jobs delivers a burst of messages; once their
    jobs are done, those deliveries must not account for another job whose message was lost
    (the count of held messages alone would, until REMIXQ_RELAY_QUEUED_STALE had passed after
    the last delivery: a cascade seen on the embedded default in CI)."""
    done, lost = relay.backlog(BATCH), relay.backlog(BATCH)
    with relay.app.connection_for_read() as connection:
        channel = connection.default_channel
        finished = channel.basic_get(QUEUE, no_ack=False)
        assert finished is not None and sorted(finished.decode()[0][0]) == done
        with transaction(relay.runtime.sessions) as session:
            session.execute(
                update(Job).where(Job.id.in_(done)).values(status=JobStatus.COMPLETED.value)
            )
        # The lost jobs' message was taken by a worker that died: held long ago.
        dead = channel.basic_get(QUEUE, no_ack=False)
        assert dead is not None and sorted(dead.decode()[0][0]) == lost
        relay.age_deliveries(connection, dead)
        assert relay.messages() == 1  # counted alone, the finished one would carry them
        assert relay_lost_jobs(relay.app, relay.runtime) == BATCH
        assert relay.statuses(lost) == {"queued"}
        assert relay.messages() == 2  # their message again, and the finished one, held
        assert relay_lost_jobs(relay.app, relay.runtime) == 0  # now accounted for


def test_a_broker_that_cannot_tell_keeps_the_age_rule(engine: Engine, tmp_path: Path) -> None:
    settings = relay_settings(engine, tmp_path, "memory://")
    park_other_open_jobs(engine)
    runtime = Runtime(settings)
    app = create_celery(settings, runtime=runtime)
    try:
        assert messages_held(app, QUEUE, held_within=timedelta(seconds=STALE)) is None
        backlog = Relay(settings, runtime, app, "memory", None).backlog(5)
        assert relay_lost_jobs(app, runtime) == len(backlog)
    finally:
        park_other_open_jobs(engine)
        runtime.engine.dispose()


def test_the_periodic_ticks_neither_wait_behind_the_backlog_nor_count_as_jobs(
    relay: Relay,
) -> None:
    backlog = relay.backlog(10)
    relay.purge()  # one message of 10 jobs, lost
    for entry in relay.app.conf.beat_schedule.values():  # published as beat publishes them
        relay.app.send_task(entry["task"], **entry["options"])
    assert relay.messages() == 0  # not in the submission queue, behind a backlog
    with relay.app.connection_for_read() as connection:
        tick = connection.default_channel.basic_get(PERIODIC_QUEUE, no_ack=False)
        assert tick is not None  # a worker runs it, holding it unacknowledged (late ack)
        assert relay.messages() == 0
        assert relay_lost_jobs(relay.app, relay.runtime) == len(backlog)
