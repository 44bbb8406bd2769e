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

The writer cannot die for good: should it stop (an exception that is not an `Exception`), its
batch gets a 503 and a new writer is started by the next webhook, or by one still waiting
(it checks every second). Its queue is bounded (`max_queued`, REMIXQ_RECEIVER_QUEUE_MAX):
during a long database stall a webhook beyond the bound is refused at once with a 503 and
Retry-After instead of waiting 25 s for nothing, and `/readyz` answers 503 meanwhile.
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

from remixq import metrics
from remixq.ingest import DEFAULT_LIMITS, Limits, Outcome, ingest_batch

log = logging.getLogger(__name__)

# How often a webhook waiting for its commit checks that the writer still runs.
_LIVENESS_CHECK = 1.0


class WriterBusy(RuntimeError):
    """The writer did not answer in time; the webhook may or may not be stored (the provider
    delivers it again, and storing is idempotent)."""


class WriterFull(WriterBusy):
    """The writer's queue is at its bound (the database has stalled for a while): the webhook
    is refused at once, not queued, and the provider delivers it again later."""


class WriterDied(WriterBusy):
    """The writer stopped (an exception that is not an `Exception`) while writing the batch of
    this webhook; nothing of the batch was committed. A new writer serves the next webhooks."""


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
    refused: int = 0  # webhooks refused at once because the queue was at its bound
    restarts: int = 0  # writers started again after one had stopped


class GroupCommit:
    """One writer per process, started on first use (after gunicorn's fork)."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 64,
        wait_seconds: float = 25.0,
        max_queued: int = 1024,
        limits: Limits = DEFAULT_LIMITS,
    ):
        self._engine = engine
        self._limits = limits
        self._max_batch = max_batch
        self._wait_seconds = wait_seconds
        self._max_queued = max_queued
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.stats = WriterStats()
        self._open: Connection | None = None

    def queued(self) -> int:
        """Webhooks waiting for the writer (not counting the batch it is writing)."""
        return self._queue.qsize()

    def full(self) -> bool:
        """The queue is at its bound: a webhook now would be refused."""
        return self._queue.qsize() >= self._max_queued

    def alive(self) -> bool:
        """A writer is running (it is started, or restarted, by the next webhook otherwise)."""
        return self._thread is not None and self._thread.is_alive()

    def ingest(self, body: bytes, task_uuid: str) -> Outcome:
        """Store one webhook; returns once its transaction has committed.

        Raises `WriterFull` at once when `max_queued` webhooks already wait (during a long
        database stall the queue would otherwise grow while its requests time out), and
        `WriterBusy` when no commit came within `wait_seconds`. The bound is checked, then the
        webhook queued: concurrent threads may pass it by a few, greenlets cannot.
        """
        self.start()
        if self.full():
            self.stats.refused += 1
            raise WriterFull(f"{self._max_queued} webhooks already wait for the database")
        pending = _Pending(body, task_uuid)
        self._queue.put(pending)
        deadline = time.monotonic() + self._wait_seconds
        while not pending.done.wait(min(_LIVENESS_CHECK, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                raise WriterBusy(f"no commit within {self._wait_seconds:g} s")
            self.start()  # a writer that died with webhooks queued: a new one writes them
        if pending.error is not None:
            raise pending.error
        assert pending.outcome is not None
        return pending.outcome

    def start(self) -> None:
        """Start the writer, or a new one if it died: its queue is kept, so the webhooks that
        were waiting are written by the new one."""
        if self.alive():
            return
        with self._lock:
            if self.alive():
                return
            if self._thread is not None:
                self.stats.restarts += 1
                log.error("the writer had stopped; starting a new one")
            self._thread = threading.Thread(target=self._run, name="remixq-writer", daemon=True)
            self._thread.start()

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
            except Exception as exc:  # the writer outlives any batch (a bug)
                for pending in batch:
                    if not pending.done.is_set():
                        pending.fail(exc)
                log.exception("the writer failed a batch of %d webhooks", len(batch))
            except BaseException as exc:
                # A shutdown, a greenlet killed, a KeyboardInterrupt: this writer ends here.
                # Its batch's requests get a 503 now (not their exception, nor a 25 s wait),
                # and the next webhook starts a new writer (`start`).
                self._discard_connection()
                died = WriterDied(f"the writer stopped: {type(exc).__name__}")
                for pending in batch:
                    if not pending.done.is_set():
                        pending.fail(died)
                raise

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
        metrics.BATCH_SIZE.observe(len(batch))
        try:
            outcomes = ingest_batch(
                self._connection(), [(p.body, p.task_uuid) for p in batch], limits=self._limits
            )
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
