"""The PostgreSQL store: a batch of webhooks (of one, most often) in one statement sent through
psycopg, and the settings the receiver's connections plan it with."""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from remixq.db import json_dumps
from remixq.ingest.decision import DECIDED_STATUS, REFUSAL, Locked
from remixq.ingest.records import Applied, Arrival, InboxRow, Outcome
from remixq.providers.runware.results import ErrorItem, ResultItem
from remixq.states import FINAL, InboxStatus, JobStatus

# How the receiver's connections plan the statement below, which psycopg prepares: a generic
# plan made once, and nested loops only, which the batches' few rows run fastest with
# (docs/benchmarks.md, "Webhook ingest": the plan cache, and nested-loop plans).
PLANNER_OPTIONS = " ".join(
    f"-c {setting}"
    for setting in (
        "plan_cache_mode=force_generic_plan",
        "enable_hashjoin=off",
        "enable_hashagg=off",
        "enable_mergejoin=off",
    )
)

_FINAL = ", ".join(f"'{status.value}'" for status in sorted(FINAL))
# Only an error that fails the job is written as its error: a refused one (a forged or late
# report about a completed job) leaves the stored code alone. `jobs.status` is the old value.
_MOVES_TO_FAILED = (
    f"decided.failed AND decided.status = '{JobStatus.FAILED.value}'"
    f" AND jobs.status <> '{JobStatus.FAILED.value}'"
)


class PostgresStore:
    """One statement for a batch of webhooks (of one, most often), sent through psycopg: the
    inbox rows, the jobs' row locks, the image inserts and the jobs' updates are data-modifying
    parts of one WITH query over the batch's arrays, so a batch costs BEGIN, this statement and
    COMMIT. Each job's new status is decided in SQL by the same rule as `decide` (which then
    tells the caller what happened), from values read under the row lock. An arrival without a
    body writes no inbox row (`apply`: a replayed event, a body's second task).

    Every writer locks the jobs' rows in one order (by id), so concurrent batches cannot
    deadlock. The inbox row is written with the outcome `account` and `conclude` find, so no
    correction follows it. The jobs are looked up by `task_uuid = ANY(array)`, not by a join
    with the batch's rows, whose generic plan scanned the whole jobs table (docs/benchmarks.md,
    "Webhook ingest"). The statement is sent with its whitespace collapsed: psycopg caches the
    parsing of a query only up to 4,096 characters."""

    _STATEMENT = f"""
        WITH arrival AS (
            SELECT a.ord, a.task, a.event_task, decode(a.body, 'base64') AS body, a.items,
                   a.failed, a.code, a.message
            FROM jsonb_to_recordset(%(batch)s::jsonb) AS a(
                ord int, task uuid, event_task uuid, body text, items jsonb, failed boolean,
                code text, message text
            )
        ), job AS (
            SELECT id, task_uuid, status, number_results, results_received
            FROM jobs WHERE task_uuid = ANY(%(tasks)s::uuid[])
            ORDER BY id
            FOR UPDATE
        ), inserted AS (
            INSERT INTO images (job_id, image_uuid, image_url, seed, nsfw, cost, raw, created_at)
            SELECT job.id, item.image_uuid, item.image_url, item.seed, item.nsfw, item.cost,
                   item.raw, %(now)s
            FROM arrival JOIN job ON job.task_uuid = arrival.task
            CROSS JOIN LATERAL jsonb_to_recordset(arrival.items) AS item(
                image_uuid uuid, image_url text, seed bigint, nsfw boolean, cost numeric, raw jsonb
            )
            ON CONFLICT (image_uuid) DO NOTHING
            RETURNING job_id
        ), counted AS (
            SELECT job.id, count(inserted.job_id) AS stored
            FROM job LEFT JOIN inserted ON inserted.job_id = job.id
            GROUP BY job.id
        ), decided AS (
            SELECT job.id, job.task_uuid AS task, counted.stored, arrival.failed, arrival.code,
                arrival.message, {DECIDED_STATUS} AS status, {REFUSAL} AS refusal
            FROM arrival JOIN job ON job.task_uuid = arrival.task
            JOIN counted ON counted.id = job.id
        ), event AS (
            INSERT INTO webhook_events (received_at, source, task_uuid, status, body, error)
            SELECT %(now)s, %(source)s::text, arrival.event_task,
                CASE WHEN decided.id IS NULL THEN '{InboxStatus.ORPHAN.value}'
                    ELSE '{InboxStatus.PROCESSED.value}' END,
                arrival.body,
                CASE WHEN decided.id IS NULL THEN 'no job has taskUUID ' || arrival.task::text
                    ELSE decided.refusal END
            FROM arrival LEFT JOIN decided ON decided.task = arrival.task
            WHERE arrival.body IS NOT NULL
            RETURNING id, task_uuid, status, error
        ), updated AS (
            UPDATE jobs SET
                results_received = jobs.results_received + decided.stored,
                status = decided.status,
                finished_at = CASE
                    WHEN decided.status <> jobs.status AND decided.status IN ({_FINAL})
                    THEN %(now)s ELSE jobs.finished_at END,
                error_code = CASE WHEN {_MOVES_TO_FAILED} THEN decided.code
                    ELSE jobs.error_code END,
                error_message = CASE WHEN {_MOVES_TO_FAILED} THEN decided.message
                    ELSE jobs.error_message END,
                updated_at = %(now)s
            FROM decided
            WHERE jobs.id = decided.id
                AND (decided.stored > 0 OR decided.failed OR decided.status <> jobs.status)
        )
        SELECT job.status, job.number_results, job.results_received, counted.stored,
            event.id, event.status, event.error
        FROM arrival
        LEFT JOIN job ON job.task_uuid = arrival.task
        LEFT JOIN counted ON counted.id = job.id
        LEFT JOIN event ON event.task_uuid IS NOT DISTINCT FROM arrival.event_task
        ORDER BY arrival.ord"""  # noqa: S608 (interpolates only constants of the state machine)
    _STATEMENT = " ".join(_STATEMENT.split())
    _INSERT_EVENT = (
        "INSERT INTO webhook_events (received_at, source, task_uuid, status, body, error)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
    )
    _CORRECT_EVENT = "UPDATE webhook_events SET status = %s, error = %s WHERE id = %s"

    def __init__(self, connection: Connection):
        self._connection = connection
        self._driver: Any = connection.connection.driver_connection

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """psycopg's errors as SQLAlchemy's, as if the statement had gone through the engine
        (callers catch `sqlalchemy.exc.OperationalError`; a lost connection is invalidated)."""
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            dialect = self._connection.dialect
            lost = dialect.is_disconnect(cast(Any, exc), self._driver, None)
            if lost:
                self._connection.invalidate(exc)
            raise DBAPIError.instance(
                None, None, exc, psycopg.Error, connection_invalidated=lost, dialect=dialect
            ) from exc

    def insert_event(self, arrival: Arrival, *, status: InboxStatus, error: str | None) -> InboxRow:
        params = (arrival.at, arrival.source, arrival.task_uuid, status, arrival.body, error)
        with self._translated():
            return InboxRow(
                self._driver.execute(self._INSERT_EVENT, params).fetchone()[0], status, error
            )

    def _execute(self, batch: list[Applied], *, events: bool) -> list[Any]:
        arrivals = [a.arrival for a in batch]
        # The statement maps inbox rows back to arrivals by task: one row per task, at most.
        assert len(batch) == 1 or len({a.task_uuid for a in arrivals}) == len(batch)
        # One JSON parameter (the bodies in base64): psycopg dumps a document in C, while it
        # dumps arrays element by element in Python.
        rows = [
            {
                "ord": index,
                "task": a.task_uuid,
                "event_task": a.arrival.task_uuid,
                "body": b64encode(a.arrival.body).decode("ascii") if events else None,
                "items": _items(a.results),
                "failed": a.error is not None,
                "code": a.error.code if a.error else None,
                "message": a.error.message if a.error else None,
            }
            for index, a in enumerate(batch)
        ]
        params = {
            "batch": json_dumps(rows),
            "tasks": "{" + ",".join(a.task_uuid for a in batch) + "}",  # an array literal
            "now": arrivals[0].at,
            "source": arrivals[0].source,
        }
        with self._translated():
            answer: list[Any] = self._driver.execute(self._STATEMENT, params).fetchall()
        return answer

    @contextmanager
    def autocommit(self) -> Iterator[None]:
        """Each statement its own transaction, committed when it returns."""
        self._driver.autocommit = True
        try:
            yield
        finally:
            if not self._driver.closed:
                self._driver.autocommit = False

    @staticmethod
    def _locked(row: Any) -> Locked | None:
        status, number_results, results_received, stored = row[:4]
        if status is None:
            return None
        return Locked(JobStatus(status), number_results, results_received, stored)

    def apply(
        self, task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> Locked | None:
        arrival = Arrival(b"", "", None, now)
        (row,) = self._execute([Applied(0, arrival, task_uuid, results, error)], events=False)
        return self._locked(row)

    def insert_events_and_apply(self, batch: list[Applied]) -> list[tuple[InboxRow, Locked | None]]:
        return [
            (InboxRow(*row[4:7]), self._locked(row)) for row in self._execute(batch, events=True)
        ]

    def correct_event(self, inbox: InboxRow, outcome: Outcome) -> None:
        with self._translated():
            self._driver.execute(
                self._CORRECT_EVENT, (outcome.inbox_status, outcome.message or None, inbox.id)
            )


def _items(results: list[ResultItem]) -> list[dict[str, Any]]:
    """A task's new images as the rows the PostgreSQL statement inserts."""
    return [
        {
            "image_uuid": str(r.image_uuid),
            "image_url": r.image_url,
            "seed": r.seed,
            "nsfw": r.nsfw,
            "cost": None if r.cost is None else str(r.cost),  # exact: numeric from text
            "raw": r.raw,
        }
        for r in results
    ]
