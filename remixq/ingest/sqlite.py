"""The SQLite store: the Core store's steps as fixed SQL strings on the driver's cursor.

On the embedded default the receiver's writer spent most of a webhook's CPU building and
compiling SQLAlchemy Core statements (about 60% of it: docs/benchmarks.md, "The embedded
default at size"), where sqlite3 itself took a tenth. Here each step is one prepared string,
cached by sqlite3's statement cache, with its values converted by the columns' own bind
processors (so a UUID, a timestamp, an amount or a JSON document is stored exactly as the ORM
stores it and reads it back). The steps, the cap and the state machine are the Core store's
(`CoreStore`), whose `decide` rule it shares; only the statements differ.
"""

from __future__ import annotations

import json
import sqlite3
import weakref
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from remixq.ingest.core import CoreStore
from remixq.ingest.decision import Locked, decide, overflows
from remixq.ingest.records import Arrival, InboxRow, Limits, Outcome
from remixq.models import Image, Job, WebhookEvent
from remixq.providers.runware.results import ErrorItem, ResultItem
from remixq.states import InboxStatus, JobStatus

Processor = Callable[[Any], Any]

_INBOX_COUNT = "SELECT count(*) FROM (SELECT 1 FROM webhook_events WHERE task_uuid = ? LIMIT ?)"
_COUNT_OVERFLOW = (
    "UPDATE jobs SET inbox_overflow = inbox_overflow + 1, updated_at = ? WHERE task_uuid = ?"
)
_INSERT_EVENT = (
    "INSERT INTO webhook_events (received_at, source, task_uuid, status, body, error) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_LOCK_JOB = "SELECT id, status, number_results, results_received FROM jobs WHERE task_uuid = ?"
_INSERT_IMAGE = (
    "INSERT INTO images (job_id, image_uuid, image_url, seed, nsfw, cost, raw, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (image_uuid) DO NOTHING"
)
# A job's move, one fixed statement: a NULL status or finish leaves the column as it is, and only
# an error that fails the job is written as its error (a refused one, a forged or late report
# about a completed job, leaves the stored code alone).
_MOVE_JOB = (
    "UPDATE jobs SET results_received = results_received + ?, updated_at = ?, "
    "status = coalesce(?, status), finished_at = coalesce(?, finished_at), "
    "error_code = CASE WHEN ? THEN ? ELSE error_code END, "
    "error_message = CASE WHEN ? THEN ? ELSE error_message END "
    "WHERE id = ?"
)
# The stored images among a body's, its UUIDs given as one JSON array.
_STORED_IMAGES = (
    "SELECT image_uuid FROM images WHERE image_uuid IN (SELECT value FROM json_each(?))"
)
_CORRECT_EVENT = "UPDATE webhook_events SET status = ?, error = ? WHERE id = ?"


class _Binds:
    """The bind processors of the columns the statements write, for one dialect."""

    def __init__(self, dialect: Dialect):
        def of(column: ColumnElement[Any]) -> Processor:
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            return processor if processor is not None else _same

        self.uuid = of(Job.__table__.c.task_uuid)
        self.at = of(Job.__table__.c.updated_at)
        self.money = of(Image.__table__.c.cost)
        self.json = of(Image.__table__.c.raw)
        self.body = of(WebhookEvent.__table__.c.body)


def _same(value: Any) -> Any:
    return value


_BINDS: weakref.WeakKeyDictionary[Dialect, _Binds] = weakref.WeakKeyDictionary()


def _binds(dialect: Dialect) -> _Binds:
    binds = _BINDS.get(dialect)
    if binds is None:
        binds = _BINDS[dialect] = _Binds(dialect)
    return binds


class SQLiteStore(CoreStore):
    """The Core store's steps as fixed SQL on the sqlite3 cursor of the caller's transaction
    (begun `IMMEDIATE` by `remixq.db.make_engine`: the write lock is held from the start, so the
    job's row needs no `FOR UPDATE`)."""

    def __init__(self, connection: Connection, limits: Limits):
        super().__init__(connection, limits)
        self._bind = _binds(connection.dialect)
        self._cursor_: Any = None

    @property
    def _cursor(self) -> Any:
        # Taken on first use, inside the caller's transaction (`ingest_batch` makes the store
        # before it begins one).
        if self._cursor_ is None:
            self._cursor_ = self._connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        return self._cursor_

    def _execute(self, statement: str, params: Any, *, many: bool = False) -> Any:
        """Run one statement; sqlite3's errors as SQLAlchemy's, as if it had gone through the
        engine (callers catch `sqlalchemy.exc.OperationalError`, tests `DBAPIError`)."""
        cursor = self._cursor
        try:
            if many:
                cursor.executemany(statement, params)
            else:
                cursor.execute(statement, params)
        except sqlite3.Error as exc:
            dialect = self._connection.dialect
            raise DBAPIError.instance(
                statement, params, exc, sqlite3.Error, dialect=dialect
            ) from exc
        return cursor

    def insert_event(self, arrival: Arrival, *, status: InboxStatus, error: str | None) -> InboxRow:
        task = self._bind.uuid(arrival.task_uuid) if arrival.task_uuid is not None else None
        if task is not None:
            cursor = self._execute(_INBOX_COUNT, (task, self._inbox_max))
            if cursor.fetchone()[0] >= self._inbox_max:
                cursor = self._execute(_COUNT_OVERFLOW, (self._bind.at(arrival.at), task))
                if cursor.rowcount:
                    return InboxRow(None, None, None)
                # No job has the task: an orphan is kept whatever the count, for its replay.
        cursor = self._execute(
            _INSERT_EVENT,
            (
                self._bind.at(arrival.at),
                arrival.source,
                task,
                InboxStatus(status).value,
                self._bind.body(arrival.body),
                error,
            ),
        )
        return InboxRow(cursor.lastrowid, status, error)

    def apply(
        self, task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> Locked | None:
        cursor = self._execute(_LOCK_JOB, (self._bind.uuid(task_uuid),))
        row = cursor.fetchone()
        if row is None:
            return None
        job_id, status, number_results, results_received = row
        new = self._new_images(results)
        job = Locked(JobStatus(status), number_results, results_received, 0, new)
        if overflows(job):
            return job  # refused whole: nothing stored, nothing changes (`decide` says why)
        job = replace(job, stored=self._insert_images(job_id, results, now))
        change = decide(job, error)
        if change.writes:
            fails = error is not None and change.status is JobStatus.FAILED
            cursor = self._execute(
                _MOVE_JOB,
                (
                    job.stored,
                    self._bind.at(now),
                    None if change.status is None else change.status.value,
                    self._bind.at(now) if change.finishes else None,
                    fails,
                    error.code if fails and error is not None else None,
                    fails,
                    error.message if fails and error is not None else None,
                    job_id,
                ),
            )
        return job

    def _new_images(self, results: list[ResultItem]) -> int:
        """How many distinct images of `results` are not stored yet (for any job)."""
        candidates = {self._bind.uuid(str(r.image_uuid)) for r in results}
        if not candidates:
            return 0
        cursor = self._execute(_STORED_IMAGES, (json.dumps(sorted(candidates)),))
        return len(candidates - {value for (value,) in cursor.fetchall()})

    def _insert_images(self, job_id: int, results: list[ResultItem], now: datetime) -> int:
        if not results:
            return 0
        at = self._bind.at(now)
        bind = self._bind
        rows = [
            (
                job_id,
                bind.uuid(str(r.image_uuid)),
                r.image_url,
                r.seed,
                None if r.nsfw is None else int(r.nsfw),
                bind.money(r.cost),
                bind.json(r.raw),
                at,
            )
            for r in results
        ]
        cursor = self._execute(_INSERT_IMAGE, rows, many=True)
        return int(cursor.rowcount)

    def correct_event(self, inbox: InboxRow, outcome: Outcome) -> None:
        if inbox.id is None:
            return
        self._execute(
            _CORRECT_EVENT,
            (InboxStatus(outcome.inbox_status).value, outcome.message or None, inbox.id),
        )
