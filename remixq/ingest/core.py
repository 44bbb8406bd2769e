"""The Core store: ingestion's steps as SQLAlchemy Core statements, for every backend but
PostgreSQL through psycopg (SQLite, the embedded default, above all)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from remixq.ingest.decision import Locked, decide, overflows
from remixq.ingest.records import Applied, Arrival, InboxRow, Limits, Outcome
from remixq.models import Image, Job, WebhookEvent
from remixq.providers.runware.results import ErrorItem, ResultItem
from remixq.states import InboxStatus, JobStatus

# Image UUIDs looked up per statement (SQLite allows 32,766 parameters in one).
_LOOKUP_CHUNK = 500


class CoreStore:
    """The same steps as SQLAlchemy Core statements, for every other backend (SQLite above
    all); the state machine decides in Python (`decide`)."""

    def __init__(self, connection: Connection, limits: Limits):
        self._connection = connection
        self._inbox_max = limits.inbox_max_per_task

    def insert_event(self, arrival: Arrival, *, status: InboxStatus, error: str | None) -> InboxRow:
        if arrival.task_uuid is not None and self._inbox_full(arrival.task_uuid):
            counted = self._connection.execute(
                update(Job)
                .where(Job.task_uuid == arrival.task_uuid)
                .values(inbox_overflow=Job.inbox_overflow + 1)
            )
            if counted.rowcount:
                return InboxRow(None, None, None)
            # No job has the task: an orphan is kept whatever the count, for its replay.
        row_id = self._connection.execute(
            insert(WebhookEvent)
            .values(
                received_at=arrival.at,
                source=arrival.source,
                task_uuid=arrival.task_uuid,
                status=status,
                body=arrival.body,
                error=error,
            )
            .returning(WebhookEvent.id)
        ).scalar_one()
        return InboxRow(row_id, status, error)

    def _inbox_full(self, task_uuid: str) -> bool:
        kept = (
            select(WebhookEvent.id)
            .where(WebhookEvent.task_uuid == task_uuid)
            .limit(self._inbox_max)
            .subquery()
        )
        return (self._connection.scalar(select(func.count()).select_from(kept)) or 0) >= (
            self._inbox_max
        )

    def insert_events_and_apply(self, batch: list[Applied]) -> list[tuple[InboxRow, Locked | None]]:
        return [
            (
                self.insert_event(a.arrival, status=InboxStatus.PROCESSED, error=None),
                self.apply(a.task_uuid, a.results, a.error, a.arrival.at),
            )
            for a in batch
        ]

    def apply(
        self, task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> Locked | None:
        row = self._connection.execute(
            select(Job.id, Job.status, Job.number_results, Job.results_received)
            .where(Job.task_uuid == task_uuid)
            .with_for_update()
        ).one_or_none()
        if row is None:
            return None
        new = self._new_images(results)
        job = Locked(JobStatus(row.status), row.number_results, row.results_received, 0, new)
        if overflows(job):
            return job  # refused whole: nothing stored, nothing changes (`decide` says why)
        job = replace(job, stored=self._insert_images(row.id, results, now))
        change = decide(job, error)
        if change.writes:
            values: dict[str, Any] = {}
            if error is not None and change.status is JobStatus.FAILED:
                # Only an error that fails the job is its error: a refused one (a forged or
                # late report about a completed job) leaves the stored code alone.
                values.update(error_code=error.code, error_message=error.message)
            if change.status is not None:
                values["status"] = change.status.value
            if change.finishes:
                values["finished_at"] = now
            self._connection.execute(
                update(Job)
                .where(Job.id == row.id)
                .values(
                    results_received=Job.results_received + job.stored, updated_at=now, **values
                )
            )
        return job

    def _new_images(self, results: list[ResultItem]) -> int:
        """How many distinct images of `results` are not stored yet (for any job)."""
        candidates = sorted({str(r.image_uuid) for r in results})
        stored: set[str] = set()
        for start in range(0, len(candidates), _LOOKUP_CHUNK):
            chunk = candidates[start : start + _LOOKUP_CHUNK]
            stored.update(
                self._connection.scalars(
                    select(Image.image_uuid).where(Image.image_uuid.in_(chunk))
                )
            )
        return len(set(candidates) - stored)

    def _insert_images(self, job_id: int, results: list[ResultItem], now: datetime) -> int:
        if not results:
            return 0
        rows = [
            {
                "job_id": job_id,
                "image_uuid": str(r.image_uuid),
                "image_url": r.image_url,
                "seed": r.seed,
                "nsfw": r.nsfw,
                "cost": r.cost,
                "raw": r.raw,
                "created_at": now,
            }
            for r in results
        ]
        dialect = self._connection.dialect.name
        insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert_into(Image)
            .on_conflict_do_nothing(index_elements=["image_uuid"])
            .returning(Image.image_uuid)
        )
        return len(self._connection.execute(stmt, rows).all())

    def correct_event(self, inbox: InboxRow, outcome: Outcome) -> None:
        if inbox.id is None:
            return
        self._connection.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == inbox.id)
            .values(status=outcome.inbox_status, error=outcome.message or None)
        )
