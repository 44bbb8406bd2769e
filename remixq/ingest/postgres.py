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
from remixq.ingest.core import CoreStore
from remixq.ingest.decision import DECIDED_STATUS, OVERFLOWS, REFUSAL, Locked
from remixq.ingest.records import Applied, Arrival, InboxRow, Limits, Outcome
from remixq.providers.runware.results import ErrorItem, ResultItem
from remixq.states import FINAL, InboxStatus, JobStatus

# How the receiver's connections plan the statement below, which psycopg prepares: a generic
# plan made once, and nested loops only, which the batches' few rows run fastest with
# (docs/benchmarks.md, "Webhook ingest": the plan cache, and nested-loop plans).
# Index scans only, too: the statement's lookups by key (stored images, a task's inbox rows)
# planned once while those tables were nearly empty would otherwise scan them whole for the
# connection's life (a bench run's PostgreSQL CPU per webhook grew thirtyfold that way).
PLANNER_OPTIONS = " ".join(
    f"-c {setting}"
    for setting in (
        "plan_cache_mode=force_generic_plan",
        "enable_hashjoin=off",
        "enable_hashagg=off",
        "enable_mergejoin=off",
        "enable_seqscan=off",
    )
)

_FINAL = ", ".join(f"'{status.value}'" for status in sorted(FINAL))
# Only an error that fails the job is written as its error: a refused one (a forged or late
# report about a completed job) leaves the stored code alone. `job.status` is the old value.
_FAILED = JobStatus.FAILED.value
_MOVES_TO_FAILED = f"d.failed AND d.status = '{_FAILED}' AND job.status <> '{_FAILED}'"
# The body changes the job (`Change.writes`): only then does its `updated_at` move. A delivery
# counted, not kept (`dropped`), only moves `inbox_overflow`.
_WRITES = "(d.stored > 0 OR d.failed OR d.status <> job.status)"


class PostgresStore:
    """One statement for a batch of webhooks (of one, most often), sent through psycopg: the
    inbox rows, the jobs' row locks, the image inserts and the jobs' updates are data-modifying
    parts of one WITH query over the batch's arrays, so a batch costs BEGIN, this statement and
    COMMIT. Each job's new status is decided in SQL by the same rule as `decide` (which then
    tells the caller what happened), from values read under the row lock. An arrival without a
    body writes no inbox row (`apply`: a replayed event, a body's second task).

    The cap (`decision`): `cap` counts each job's new images, those of the body not in
    `images` yet, and refuses the body whole when they would go past the job's numberResults
    or the job is final; `inserted` stores nothing of a refused body. The count is taken by
    `remixq_stored_images` (a migration's VOLATILE function: a fresh snapshot) once the job's
    row is locked: the statement's own snapshot, taken before it waited for the lock, would
    miss the images of the transaction that held it, and refuse a redelivery racing its
    original. The inbox's bound: a body whose task already has `inbox_max_per_task` rows writes
    none (`dropped`), and its job's `inbox_overflow` counts it (counted in the statement's
    snapshot: concurrent writers may each keep one more).

    Every writer locks the jobs' rows in one order (by id), so concurrent batches cannot
    deadlock. The inbox row is written with the outcome `account` and `conclude` find, so no
    correction follows it. The jobs are looked up by `task_uuid = ANY(array)`, not by a join
    with the batch's rows, whose generic plan scanned the whole jobs table (docs/benchmarks.md,
    "Webhook ingest"). The statement is sent with its whitespace collapsed: psycopg caches the
    parsing of a query only up to 4,096 characters (a test keeps it below)."""

    _STATEMENT = f"""
        WITH arrival AS (
            SELECT * FROM jsonb_to_recordset(%(batch)s::jsonb) AS a(
                ord int, task uuid, event_task uuid, body text, items jsonb, failed boolean,
                code text, message text
            )
        ), job AS (
            SELECT id, task_uuid, status, number_results, results_received
            FROM jobs WHERE task_uuid = ANY(%(tasks)s::uuid[])
            ORDER BY id
            FOR UPDATE
        ), item AS (
            SELECT job.id, i.*, %(now)s::timestamptz
            FROM arrival JOIN job ON job.task_uuid = arrival.task
            CROSS JOIN LATERAL jsonb_to_recordset(arrival.items) AS i(
                image_uuid uuid, image_url text, seed bigint, nsfw boolean, cost numeric, raw jsonb
            )
        ), cap AS (
            SELECT job.id, fresh.new, {OVERFLOWS} AS refused
            FROM job CROSS JOIN LATERAL (
                SELECT count(DISTINCT image_uuid)
                    - remixq_stored_images(array_agg(DISTINCT image_uuid)) AS new
                FROM item WHERE item.id = job.id
            ) AS fresh
        ), inserted AS (
            INSERT INTO images (job_id, image_uuid, image_url, seed, nsfw, cost, raw, created_at)
            SELECT item.* FROM item JOIN cap USING (id) WHERE NOT refused
            ON CONFLICT (image_uuid) DO NOTHING
            RETURNING job_id
        ), counted AS (
            SELECT job.id, count(inserted.job_id) AS stored
            FROM job LEFT JOIN inserted ON inserted.job_id = job.id
            GROUP BY job.id
        ), decided AS (
            SELECT job.id, job.task_uuid AS task, counted.stored, cap.refused,
                arrival.failed AND NOT cap.refused AS failed, arrival.code,
                arrival.message, {DECIDED_STATUS} AS status,
                {REFUSAL} AS error,
                arrival.body IS NOT NULL AND EXISTS (
                    SELECT FROM webhook_events WHERE task_uuid = arrival.event_task
                    OFFSET %(inbox_full)s
                ) AS dropped
            FROM arrival JOIN job ON job.task_uuid = arrival.task
            JOIN counted USING (id) JOIN cap USING (id)
        ), event AS (
            INSERT INTO webhook_events (received_at, source, task_uuid, status, body, error)
            SELECT %(now)s, %(source)s::text, arrival.event_task,
                CASE WHEN d.id IS NULL THEN '{InboxStatus.ORPHAN.value}'
                    WHEN d.refused THEN '{InboxStatus.REJECTED.value}'
                    ELSE '{InboxStatus.PROCESSED.value}' END,
                decode(arrival.body, 'base64'),
                CASE WHEN d.id IS NULL THEN 'no job has taskUUID ' || arrival.task::text
                    ELSE d.error END
            FROM arrival LEFT JOIN decided AS d ON d.task = arrival.task
            WHERE arrival.body IS NOT NULL AND d.dropped IS NOT TRUE
            RETURNING id, task_uuid, status, error
        ), change AS (
            SELECT d.*, {_WRITES} AS writes, {_MOVES_TO_FAILED} AS fails,
                d.status <> job.status AND d.status IN ({_FINAL}) AS finishes
            FROM decided AS d JOIN job USING (id)
        ), updated AS (
            UPDATE jobs SET
                results_received = results_received + c.stored,
                status = c.status,
                finished_at = CASE WHEN c.finishes THEN %(now)s ELSE finished_at END,
                error_code = CASE WHEN c.fails THEN c.code ELSE error_code END,
                error_message = CASE WHEN c.fails THEN c.message ELSE error_message END,
                inbox_overflow = inbox_overflow + c.dropped::int,
                updated_at = CASE WHEN c.writes THEN %(now)s ELSE updated_at END
            FROM change AS c
            WHERE jobs.id = c.id AND (c.writes OR c.dropped)
        )
        SELECT job.status, job.number_results, job.results_received, counted.stored,
            cap.new, e.id, e.status, e.error
        FROM arrival
        LEFT JOIN job ON job.task_uuid = arrival.task
        LEFT JOIN counted USING (id)
        LEFT JOIN cap USING (id)
        LEFT JOIN event AS e ON e.task_uuid IS NOT DISTINCT FROM arrival.event_task
        ORDER BY arrival.ord"""  # noqa: S608 (interpolates only constants of the state machine)
    _STATEMENT = " ".join(_STATEMENT.split()).replace("( ", "(").replace(" )", ")")
    _CORRECT_EVENT = "UPDATE webhook_events SET status = %s, error = %s WHERE id = %s"

    def __init__(self, connection: Connection, limits: Limits):
        self._connection = connection
        self._driver: Any = connection.connection.driver_connection
        self._inbox_max = limits.inbox_max_per_task
        # Bodies that are not applied (invalid, refused) take the Core store's statements:
        # they are rare, and not this store's hot path.
        self._core = CoreStore(connection, limits)

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
        return self._core.insert_event(arrival, status=status, error=error)

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
            "inbox_full": self._inbox_max - 1,  # a row past this many: the inbox is full
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
        status, number_results, results_received, stored, new = row[:5]
        if status is None:
            return None
        return Locked(JobStatus(status), number_results, results_received, stored, new)

    def apply(
        self, task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> Locked | None:
        arrival = Arrival(b"", "", None, now)
        (row,) = self._execute([Applied(0, arrival, task_uuid, results, error)], events=False)
        return self._locked(row)

    def insert_events_and_apply(self, batch: list[Applied]) -> list[tuple[InboxRow, Locked | None]]:
        return [
            (InboxRow(*row[5:8]), self._locked(row)) for row in self._execute(batch, events=True)
        ]

    def correct_event(self, inbox: InboxRow, outcome: Outcome) -> None:
        if inbox.id is None:
            return
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
