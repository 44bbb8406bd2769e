"""Group commit: the webhooks a receiver process takes in together are stored in one transaction.

Each request checks the token and reads the body, then hands `(body, task)` to the process's
writer and waits. The writer takes whatever has queued up (one webhook when traffic is light, so
nothing waits for a batch to fill), stores it all with `remixq.ingest.ingest_batch`, and answers
every waiting request after the commit: a 200 still means the webhook is durably stored, but on
PostgreSQL a batch is most often one statement and one commit (one WAL flush), where one
transaction per webhook cost three round trips and a commit each.

Under gunicorn's gevent workers (the receiver's deployment) the writer and the requests are
greenlets, and the queue and events are gevent's; under threads they are threads.

Failures stay with the webhooks that cause them. When a batch fails because the database is
unavailable, every webhook of it gets that error (a 503; the provider delivers again).
When it fails for any other reason, nothing of it was committed, and each of its webhooks is
stored again on its own, so only the one that breaks gets the error.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from remixq.ingest import Outcome, ingest_batch

log = logging.getLogger(__name__)


class WriterBusy(RuntimeError):
    """The writer did not answer in time; the webhook may or may not be stored (the provider
    delivers it again, and storing is idempotent)."""


@dataclass(eq=False)
class _Pending:
    body: bytes
    task_uuid: str
    # Looked up when a webhook arrives, not at import: the module is imported in gunicorn's
    # master, before a gevent worker patches `threading`, and the stdlib Event (a Condition over
    # patched locks) costs a gevent worker far more than gevent's own (docs/benchmarks.md).
    done: threading.Event = field(default_factory=lambda: threading.Event())
    outcome: Outcome | None = None
    error: BaseException | None = None

    def resolve(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


@dataclass
class WriterStats:
    batches: int = 0  # transactions tried, a batch or a webhook stored alone after a failure
    webhooks: int = 0  # webhooks in them
    largest: int = 0  # webhooks in the largest batch
    split: int = 0  # batches that failed for a reason other than the database's availability


class GroupCommit:
    """One writer per process, started on first use (after gunicorn's fork)."""

    def __init__(self, engine: Engine, *, max_batch: int = 64, wait_seconds: float = 25.0):
        self._engine = engine
        self._max_batch = max_batch
        self._wait_seconds = wait_seconds
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()
        self.stats = WriterStats()
        self._open: Connection | None = None

    def queued(self) -> int:
        """Webhooks waiting for the writer (not counting the batch it is writing)."""
        return self._queue.qsize()

    def ingest(self, body: bytes, task_uuid: str) -> Outcome:
        """Store one webhook; returns once its transaction has committed."""
        self._start()
        pending = _Pending(body, task_uuid)
        self._queue.put(pending)
        if not pending.done.wait(self._wait_seconds):
            raise WriterBusy(f"no commit within {self._wait_seconds:g} s")
        if pending.error is not None:
            raise pending.error
        assert pending.outcome is not None
        return pending.outcome

    def _start(self) -> None:
        if self._started:
            return
        with self._lock:
            if not self._started:
                threading.Thread(target=self._run, name="remixq-writer", daemon=True).start()
                self._started = True

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                # Yield once: requests this process has already read reach the queue and join
                # the batch (a greenlet switch or a GIL release; nothing waits when none does).
                time.sleep(0)
                more = self._drain(self._max_batch - len(batch))
                if not more:
                    break
                batch += more
            try:
                self._write(batch)
            except BaseException as exc:  # the writer outlives any batch (a bug, a shutdown)
                for pending in batch:
                    if not pending.done.is_set():
                        pending.fail(exc)
                if not isinstance(exc, Exception):
                    raise
                log.exception("the writer failed a batch of %d webhooks", len(batch))

    def _drain(self, limit: int) -> list[_Pending]:
        drained: list[_Pending] = []
        while len(drained) < limit:
            try:
                drained.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return drained

    def _connection(self) -> Connection:
        """The writer's own connection, kept between batches (no pool round per batch)."""
        if self._open is None or self._open.closed or self._open.invalidated:
            self._open = self._engine.connect()
        return self._open

    def _discard_connection(self) -> None:
        if self._open is not None:
            with suppress(Exception):
                self._open.close()
            self._open = None

    def _write(self, batch: list[_Pending]) -> None:
        self.stats.batches += 1
        self.stats.webhooks += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        try:
            outcomes = ingest_batch(self._connection(), [(p.body, p.task_uuid) for p in batch])
        except (OperationalError, PoolTimeout) as exc:
            self._discard_connection()  # the next batch connects again
            for pending in batch:
                pending.fail(exc)
        except Exception as exc:  # noqa: BLE001 (any failure is retried one webhook at a time)
            if len(batch) == 1:
                batch[0].fail(exc)
                return
            self.stats.split += 1
            log.warning("a batch of %d webhooks failed (%s); storing each alone", len(batch), exc)
            for pending in batch:
                self._write([pending])
        else:
            for pending, outcome in zip(batch, outcomes, strict=True):
                pending.resolve(outcome)
