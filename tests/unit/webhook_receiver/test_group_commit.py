"""The receiver's writer (group commit) on both backends, with real threads: webhooks that wait
together are stored in one batch, a failing webhook fails alone, and an unavailable database
fails every waiting webhook without storing anything."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from remixq.db import make_engine
from remixq.ingest import Outcome
from remixq.models import Job
from tests.support.factories import new_job
from tests.support.webhooks import count, result, writer_held
from webhook_receiver.group_commit import GroupCommit, WriterBusy


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Waiting:
    """A thread posting one webhook to the writer, and what came of it."""

    def __init__(self, writer: GroupCommit, body: bytes, task_uuid: str):
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(writer, body, task_uuid))
        self.thread.start()

    def _run(self, writer: GroupCommit, body: bytes, task_uuid: str) -> None:
        try:
            self.outcome = writer.ingest(body, task_uuid)
        except BaseException as exc:  # noqa: BLE001 (whatever it raised is the result)
            self.error = exc

    def join(self) -> Waiting:
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self


def body(item: dict[str, Any]) -> bytes:
    return json.dumps(item).encode()


@pytest.fixture
def writer(engine: Engine) -> GroupCommit:
    return GroupCommit(engine)


def test_webhooks_that_wait_together_are_stored_in_one_batch(
    engine: Engine, writer: GroupCommit
) -> None:
    first = new_job(engine)
    tasks = [new_job(engine) for _ in range(12)]
    with writer_held(engine, first):
        head = Waiting(writer, body(result(first)), first)
        wait_for(lambda: writer.stats.batches == 1 and writer.queued() == 0, "the first batch")
        rest = [Waiting(writer, body(result(task)), task) for task in tasks]
        wait_for(lambda: writer.queued() == len(tasks), "the other webhooks to queue")
    for waiting in [head.join(), *(w.join() for w in rest)]:
        assert waiting.error is None
        assert waiting.outcome is not None and waiting.outcome.images_stored == 1
    assert (writer.stats.batches, writer.stats.largest, writer.stats.split) == (2, 12, 0)
    for task in [first, *tasks]:
        assert count(engine, Job, task_uuid=task, status="completed") == 1


def test_a_webhook_that_fails_in_the_database_fails_alone(
    engine: Engine, writer: GroupCommit, poison: str
) -> None:
    first, bad = new_job(engine), new_job(engine)
    good = [new_job(engine) for _ in range(3)]
    with writer_held(engine, first):
        head = Waiting(writer, body(result(first)), first)
        wait_for(lambda: writer.stats.batches == 1 and writer.queued() == 0, "the first batch")
        rest = [Waiting(writer, body(result(task)), task) for task in good]
        poisoned = Waiting(writer, body({**result(bad), "imageURL": poison}), bad)
        wait_for(lambda: writer.queued() == 4, "the other webhooks to queue")
    assert head.join().outcome is not None
    for waiting in rest:
        assert waiting.join().error is None
        assert waiting.outcome is not None and waiting.outcome.images_stored == 1
    assert isinstance(poisoned.join().error, DBAPIError)
    assert "poisoned image" in str(poisoned.error)
    assert writer.stats.split == 1
    assert count(engine, Job, task_uuid=bad, status="submitted") == 1
    assert all(count(engine, Job, task_uuid=task, status="completed") == 1 for task in good)


def test_an_unavailable_database_fails_every_waiting_webhook() -> None:
    # A database nobody listens for: every connection attempt is refused at once.
    engine = make_engine(
        "postgresql+psycopg://postgres@127.0.0.1:9/none", connect_args={"connect_timeout": 2}
    )
    writer = GroupCommit(engine)
    waiting = [Waiting(writer, b"{}", "00000000-0000-4000-8000-000000000000") for _ in range(5)]
    for w in waiting:
        assert isinstance(w.join().error, OperationalError)
    assert writer.stats.split == 0
    engine.dispose()


def test_a_writer_that_does_not_answer_in_time_is_reported_and_stores_later(
    engine: Engine,
) -> None:
    writer = GroupCommit(engine, wait_seconds=0.3)
    task = new_job(engine)
    item = result(task)
    with writer_held(engine, task):
        late = Waiting(writer, body(item), task)
        assert isinstance(late.join().error, WriterBusy)
    # Released: the webhook is stored after all; the provider's redelivery is a duplicate.
    wait_for(lambda: count(engine, Job, task_uuid=task, status="completed") == 1, "the commit")
    again = Waiting(writer, body(item), task).join()
    assert again.outcome is not None and again.outcome.duplicates == 1


class _Stop(BaseException):
    """Ends a thread without being an `Exception` (as GreenletExit or KeyboardInterrupt do)."""


# The writer's thread ends with `_Stop`, which pytest reports as a warning: expected here.
_thread_ends = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


def dying_once(write: Callable[[Any], None]) -> Callable[[Any], None]:
    """The writer's batch write, ending its thread with a BaseException the first time (as a
    greenlet's exit or an interpreter shutdown would): no failure of the database does that."""
    calls: list[int] = []

    def dies_once(batch: Any) -> None:
        calls.append(len(batch))
        if len(calls) == 1:
            raise _Stop
        write(batch)

    return dies_once


@_thread_ends
def test_a_writer_that_dies_is_replaced_and_its_batch_answered_at_once(
    engine: Engine, writer: GroupCommit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BaseException ended the writer thread while it still counted as started: every later
    webhook of the process waited 25 s and got a 503. Now its batch gets a 503 at once and the
    next webhook is stored by a new writer."""
    monkeypatch.setattr(writer, "_write", dying_once(writer._write))
    first, second = new_job(engine), new_job(engine)
    started = time.monotonic()
    died = Waiting(writer, body(result(first)), first).join()
    assert type(died.error).__name__ == "WriterDied"
    assert time.monotonic() - started < 5
    wait_for(lambda: not writer.alive(), "the writer to end")
    stored = Waiting(writer, body(result(second)), second).join()
    assert stored.error is None and stored.outcome is not None
    assert stored.outcome.images_stored == 1 and writer.stats.restarts == 1
    assert count(engine, Job, task_uuid=second, status="completed") == 1


@_thread_ends
def test_webhooks_queued_when_the_writer_died_are_written_by_a_new_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Webhooks still queued when the writer died are not stranded: a request waiting for its
    commit sees the writer gone and starts a new one, without any new webhook arriving."""
    writer = GroupCommit(engine, max_batch=1)  # one webhook per batch: the rest stay queued
    real_write = writer._write
    first = new_job(engine)
    tasks = [new_job(engine) for _ in range(3)]
    with writer_held(engine, first):
        head = Waiting(writer, body(result(first)), first)
        wait_for(lambda: writer.stats.batches == 1 and writer.queued() == 0, "the first batch")
        queued = [Waiting(writer, body(result(task)), task) for task in tasks]
        wait_for(lambda: writer.queued() == len(tasks), "the others to queue")
        monkeypatch.setattr(writer, "_write", dying_once(real_write))
    assert head.join().error is None
    errors = [w.join().error for w in queued]
    assert sum(type(e).__name__ == "WriterDied" for e in errors) == 1  # the batch it died in
    assert errors.count(None) == 2
    assert writer.stats.restarts == 1
    assert sum(count(engine, Job, task_uuid=t, status="completed") for t in tasks) == 2


def test_a_full_queue_refuses_a_webhook_at_once_and_does_not_queue_it(engine: Engine) -> None:
    """During a long database stall the queue grew while its requests timed out; now it has a
    bound beyond which a webhook is refused at once (a 503 with Retry-After from the app)."""
    writer = GroupCommit(engine, max_queued=3)
    first = new_job(engine)
    tasks = [new_job(engine) for _ in range(4)]
    with writer_held(engine, first):
        head = Waiting(writer, body(result(first)), first)
        wait_for(lambda: writer.stats.batches == 1 and writer.queued() == 0, "the first batch")
        queued = [Waiting(writer, body(result(task)), task) for task in tasks[:3]]
        wait_for(lambda: writer.queued() == 3, "the queue to fill")
        started = time.monotonic()
        refused = Waiting(writer, body(result(tasks[3])), tasks[3]).join()
        assert type(refused.error).__name__ == "WriterFull"
        assert isinstance(refused.error, WriterBusy)  # answered 503 with Retry-After
        assert time.monotonic() - started < 5 and writer.queued() == 3 and writer.full()
    for waiting in [head, *queued]:
        assert waiting.join().error is None
    assert count(engine, Job, task_uuid=tasks[3], status="submitted") == 1
    assert writer.stats.refused == 1 and not writer.full()


def test_readyz_says_unready_while_the_queue_is_full(engine: Engine, tmp_path: Any) -> None:
    from tests.support.webhooks import receiver_client
    from webhook_receiver.state import state

    with receiver_client(engine, tmp_path, receiver_queue_max=1) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json is not None
        assert (ready.json["status"], ready.json["writer"]) == ("ready", "running")
        writer = state(client.application).writer
        first, second = new_job(engine), new_job(engine)
        with writer_held(engine, first):
            head = Waiting(writer, body(result(first)), first)
            wait_for(lambda: writer.stats.batches == 1 and writer.queued() == 0, "the batch")
            queued = Waiting(writer, body(result(second)), second)
            wait_for(lambda: writer.queued() == 1, "the queue to fill")
            full = client.get("/readyz")
            assert full.status_code == 503 and full.headers["Retry-After"]
            assert full.json is not None and full.json["status"] == "unready"
        assert head.join().error is None and queued.join().error is None
        assert client.get("/readyz").status_code == 200
