"""Ingestion of provider results: webhooks, getResponse answers and inbox replays, one path.

The raw body goes into the inbox first; then each result item becomes an image row inserted
once (a redelivery is a no-op thanks to the unique imageUUID), the job's received count moves by
the rows actually inserted, and the state machine completes or fails the job. Nothing is written
to the image table from a body that does not validate as a whole. All of it happens in the
caller's transaction: the inbox row is its first write and carries the status the body is
expected to end with ("processed" for a valid one), corrected before the end when the outcome
differs (an orphan, a refused transition).

A webhook is the hottest path of the system (docs/benchmarks.md), so on PostgreSQL it is one
statement sent through psycopg, not the ORM: the inbox row, the job's row lock, the image insert
and the job's update are data-modifying parts of one WITH query, and the job's new status is
decided in it by SQL written from the state machine's table. With the caller's BEGIN and COMMIT
a webhook costs three round trips. Other backends (SQLite, the embedded default) take the same
steps as SQLAlchemy Core statements, deciding in Python; both answer through the same `_decide`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol, cast
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    ValidationError,
)
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from remixq.db import utcnow
from remixq.models import Image, Job, WebhookEvent
from remixq.states import Event, IllegalTransition, JobStatus, next_status

_BIGINT = 2**63 - 1
_MAX_COST = Decimal("99999999")


class InvalidPayload(ValueError):
    """The body is not something the provider sends; it is kept in the inbox as invalid."""


class ResultItem(BaseModel):
    """One generated image as Runware reports it (model pages, "Response Parameters")."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    task_uuid: Annotated[UUID, Field(alias="taskUUID")]
    image_uuid: Annotated[UUID, Field(alias="imageUUID")]
    image_url: Annotated[str | None, Field(alias="imageURL", max_length=8192)] = None
    seed: Annotated[StrictInt | None, Field(ge=-_BIGINT, le=_BIGINT)] = None
    nsfw: Annotated[StrictBool | None, Field(alias="NSFWContent")] = None
    cost: Annotated[Decimal | None, Field(ge=0, le=_MAX_COST, allow_inf_nan=False)] = None
    status: Literal["success"] | None = None
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ResultItem:
        validated = cls.model_validate(item)
        validated._raw = item  # stored as received, beside the typed columns
        return validated


class ErrorItem(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    task_uuid: Annotated[UUID, Field(alias="taskUUID")]
    code: Annotated[str, Field(max_length=100)] = "unknownError"
    message: Annotated[str, Field(max_length=4000)] = ""


@dataclass
class Outcome:
    """What one body did: the inbox status and, per task, what changed."""

    inbox_status: str
    images_stored: int = 0
    duplicates: int = 0
    message: str = ""
    job_statuses: dict[str, str] = field(default_factory=dict)


def parse_body(body: bytes) -> Any:
    """JSON with exact decimals (costs are money), refusing NaN/Infinity."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def split_items(payload: Any) -> tuple[list[ResultItem], list[ErrorItem], int]:
    """Results, errors and the count of still-processing items, from any documented shape:
    a bare result object, the `{"data": [...]}` envelope, and/or the `{"errors": [...]}` one."""
    if not isinstance(payload, dict):
        raise InvalidPayload("body must be a JSON object")
    raw_results: list[Any]
    raw_errors: list[Any] = []
    if "data" in payload or "errors" in payload:
        raw_results = payload.get("data") or []
        raw_errors = payload.get("errors") or []
        if not isinstance(raw_results, list) or not isinstance(raw_errors, list):
            raise InvalidPayload("data and errors must be arrays")
    else:
        raw_results = [payload]
    results: list[ResultItem] = []
    errors: list[ErrorItem] = []
    processing = 0
    try:
        for item in raw_results:
            if not isinstance(item, dict):
                raise InvalidPayload("each item must be a JSON object")
            status = item.get("status")
            if status in ("processing", "pending"):
                processing += 1
            elif status == "error" or "code" in item or "error" in item:
                errors.append(ErrorItem.model_validate(_flatten_error(item)))
            else:
                results.append(ResultItem.from_item(item))
        for item in raw_errors:
            if not isinstance(item, dict):
                raise InvalidPayload("each error must be a JSON object")
            errors.append(ErrorItem.model_validate(_flatten_error(item)))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidPayload(f"{where}: {first['msg']}") from None
    if not results and not errors and not processing:
        raise InvalidPayload("no result or error item in the body")
    return results, errors, processing


def _flatten_error(item: dict[str, Any]) -> dict[str, Any]:
    # The SDK's per-item shape nests the error: {"status": "error", "error": {code, message}}.
    nested = item.get("error")
    if isinstance(nested, dict):
        return {**nested, "taskUUID": item.get("taskUUID", nested.get("taskUUID"))}
    return item


def store_raw(session: Session, *, body: bytes, source: str, task_uuid: str | None) -> WebhookEvent:
    event = WebhookEvent(
        body=body, source=source, task_uuid=task_uuid, status="received", received_at=utcnow()
    )
    session.add(event)
    session.flush()
    return event


# --- decisions (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    results: dict[str, list[ResultItem]]  # by taskUUID
    errors: dict[str, ErrorItem]  # by taskUUID
    tasks: list[str]  # every task the body names, sorted (the order rows are locked in)


def _read(body: bytes, expected_task_uuid: str | None) -> _Parsed | Outcome:
    """The body's items by task, or the final outcome of a body that cannot be applied."""
    try:
        results, errors, _processing = split_items(parse_body(body))
    except InvalidPayload as exc:
        return Outcome("invalid", message=str(exc))
    by_task: dict[str, list[ResultItem]] = defaultdict(list)
    for result in results:
        by_task[str(result.task_uuid)].append(result)
    errors_by_task = {str(e.task_uuid): e for e in errors}
    tasks = set(by_task) | set(errors_by_task)
    if expected_task_uuid is not None and tasks - {str(UUID(expected_task_uuid))}:
        stray = sorted(tasks - {str(UUID(expected_task_uuid))})[0]
        return Outcome(
            "rejected",
            message=f"taskUUID {stray} is not the task this webhook URL was issued for",
        )
    return _Parsed(dict(by_task), errors_by_task, sorted(tasks))


@dataclass(frozen=True)
class _Locked:
    """A job as found under its row lock (before this body), and how many images were new."""

    status: JobStatus
    number_results: int
    results_received: int
    stored: int


@dataclass(frozen=True)
class _Change:
    """What the state machine makes of one job's new results or error."""

    stored: int
    status: JobStatus | None  # None: the status stays
    error: ErrorItem | None
    message: str  # why a transition was refused, if one was

    @property
    def writes(self) -> bool:
        return bool(self.stored or self.status is not None or self.error is not None)

    @property
    def finishes(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED)


def _event_for(job: _Locked, failed: bool) -> Event | None:
    if failed:
        return Event.FAIL
    if job.results_received + job.stored >= job.number_results:
        return Event.COMPLETE
    if job.stored:
        return Event.RESULT
    return None


def _decide(job: _Locked, error: ErrorItem | None) -> _Change:
    event = _event_for(job, error is not None)
    status, message = None, ""
    if event is not None:
        try:
            status = next_status(job.status, event)
        except IllegalTransition as exc:
            # e.g. an error report for a job whose every result is already stored: keep the
            # images and the completed status, and say so on the inbox row.
            message = str(exc)
    return _Change(job.stored, status, error, message)


# --- the entry point ------------------------------------------------------------------------


def ingest(
    session: Session,
    *,
    body: bytes,
    source: str = "webhook",
    expected_task_uuid: str | None = None,
    event: WebhookEvent | None = None,
) -> Outcome:
    """Store `body` in the inbox (unless replaying `event`) and apply it; never commits.

    `expected_task_uuid` is the task the webhook URL's token was issued for: an item about any
    other task is refused, so one leaked URL cannot write results for other jobs.
    """
    session.flush()  # the statements below bypass the ORM: it must have nothing pending
    return _ingest(session.connection(), body, source, expected_task_uuid, event)


def ingest_on(
    connection: Connection,
    *,
    body: bytes,
    source: str = "webhook",
    expected_task_uuid: str | None = None,
) -> Outcome:
    """`ingest` for a caller that holds a connection in a transaction rather than a session
    (the receiver: an ORM session per webhook would cost more than the webhook's statements)."""
    return _ingest(connection, body, source, expected_task_uuid, None)


def _ingest(
    connection: Connection,
    body: bytes,
    source: str,
    expected_task_uuid: str | None,
    event: WebhookEvent | None,
) -> Outcome:
    store = _store_for(connection)
    arrival = _Arrival(body, source, expected_task_uuid, utcnow())
    parsed = _read(body, expected_task_uuid)
    if isinstance(parsed, Outcome):
        if event is None:
            store.insert_event(arrival, status=parsed.inbox_status, error=parsed.message or None)
        else:
            _set_event(event, parsed)
        return parsed
    outcome = Outcome("processed")
    inbox: _Inbox | None = event
    if event is not None:
        _set_event(event, outcome)
    elif not parsed.tasks:  # only items still processing: nothing to apply
        inbox = store.insert_event(arrival, status="processed", error=None)
    orphans = []
    for task_uuid in parsed.tasks:
        results = parsed.results.get(task_uuid, [])
        error = parsed.errors.get(task_uuid)
        if inbox is None:
            inbox, job = store.insert_event_and_apply(arrival, task_uuid, results, error)
        else:
            job = store.apply(task_uuid, results, error, arrival.at)
        if job is None:
            orphans.append(task_uuid)
            continue
        change = _decide(job, error)  # what the store did, for the answer
        outcome.images_stored += change.stored
        outcome.duplicates += len(results) - change.stored
        outcome.job_statuses[task_uuid] = (change.status or job.status).value
        if change.message:
            outcome.message = change.message
    if orphans and len(orphans) == len(parsed.tasks):
        outcome.inbox_status = "orphan"
        outcome.message = f"no job has taskUUID {orphans[0]}"
    if outcome.inbox_status != "processed" or outcome.message:
        if isinstance(inbox, WebhookEvent):
            _set_event(inbox, outcome)
        else:
            store.correct_event(inbox, outcome)
    return outcome


def _set_event(event: WebhookEvent, outcome: Outcome) -> None:
    event.status = outcome.inbox_status
    event.error = outcome.message or None


# --- storage ----------------------------------------------------------------------------------

_Inbox = Any  # the id of the inbox row a store inserted (or a replayed WebhookEvent)


@dataclass(frozen=True)
class _Arrival:
    """A body as it came in: what its inbox row records."""

    body: bytes
    source: str
    task_uuid: str | None
    at: datetime


class _Store(Protocol):
    def insert_event(self, arrival: _Arrival, *, status: str, error: str | None) -> _Inbox: ...

    def apply(
        self, task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> _Locked | None:
        """Lock the job, insert its new images, move it as the state machine says; None when
        no job has this taskUUID."""

    def insert_event_and_apply(
        self,
        arrival: _Arrival,
        task_uuid: str,
        results: list[ResultItem],
        error: ErrorItem | None,
    ) -> tuple[_Inbox, _Locked | None]:
        """`insert_event` (status "processed"), then `apply`."""

    def correct_event(self, inbox: _Inbox, outcome: Outcome) -> None: ...


def _store_for(connection: Connection) -> _Store:
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _PostgresStore(connection)
    return _CoreStore(connection)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):  # as remixq.db stores JSON: exact decimals become numbers
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _status_after(event: Event, column: str) -> str:
    """SQL for the status a job whose status is `column` has after `event`, written from the
    state machine's table: a status the event does not move (ignored or refused) stays."""
    whens = []
    for status in JobStatus:
        try:
            target = next_status(status, event)
        except IllegalTransition:
            target = None
        if target is not None:
            whens.append(f"WHEN '{status.value}' THEN '{target.value}'")
    return f"CASE {column} {' '.join(whens)} ELSE {column} END"


_FINAL_SQL = ", ".join(f"'{s.value}'" for s in (JobStatus.COMPLETED, JobStatus.FAILED))


class _PostgresStore:
    """One statement per webhook, sent through psycopg: the inbox row, the job's row lock, the
    image insert and the job's update are data-modifying parts of one WITH query, so a webhook
    costs BEGIN, this statement and COMMIT. The job's new status is decided in SQL by the same
    table as `_decide` (which then tells the caller what happened), from values read under the
    row lock."""

    _EVENT = """
        event AS (
            INSERT INTO webhook_events (received_at, source, task_uuid, status, body)
            VALUES (%(now)s, %(source)s::text, %(event_task)s::text, 'processed', %(body)s)
            RETURNING id
        ),"""
    _APPLY = f"""
        job AS (
            SELECT id, status, number_results, results_received
            FROM jobs WHERE task_uuid = %(task)s::uuid
            FOR UPDATE
        ), inserted AS (
            INSERT INTO images (job_id, image_uuid, image_url, seed, nsfw, cost, raw, created_at)
            SELECT job.id, item.image_uuid, item.image_url, item.seed, item.nsfw, item.cost,
                   item.raw, %(now)s
            FROM job, jsonb_to_recordset(%(items)s::jsonb) AS item(
                image_uuid uuid, image_url text, seed bigint, nsfw boolean, cost numeric, raw jsonb
            )
            ON CONFLICT (image_uuid) DO NOTHING
            RETURNING 1
        ), counted AS (
            SELECT count(*) AS stored FROM inserted
        ), decided AS (
            SELECT job.id, counted.stored, CASE
                WHEN %(failed)s THEN {_status_after(Event.FAIL, "job.status")}
                WHEN job.results_received + counted.stored >= job.number_results
                    THEN {_status_after(Event.COMPLETE, "job.status")}
                WHEN counted.stored > 0 THEN {_status_after(Event.RESULT, "job.status")}
                ELSE job.status
            END AS status
            FROM job, counted
        ), updated AS (
            UPDATE jobs SET
                results_received = jobs.results_received + decided.stored,
                status = decided.status,
                finished_at = CASE
                    WHEN decided.status <> jobs.status AND decided.status IN ({_FINAL_SQL})
                    THEN %(now)s ELSE jobs.finished_at END,
                error_code = CASE WHEN %(failed)s THEN %(code)s::text ELSE jobs.error_code END,
                error_message = CASE
                    WHEN %(failed)s THEN %(message)s::text ELSE jobs.error_message END,
                updated_at = %(now)s
            FROM decided
            WHERE jobs.id = decided.id
                AND (decided.stored > 0 OR %(failed)s OR decided.status <> jobs.status)
        )"""
    _SELECT = """
        SELECT job.status, job.number_results, job.results_received, counted.stored{event_id}
        FROM counted LEFT JOIN job ON true"""
    _APPLY_ONLY = "WITH" + _APPLY + _SELECT.format(event_id="")
    _EVENT_AND_APPLY = (
        "WITH" + _EVENT + _APPLY + _SELECT.format(event_id=", (SELECT id FROM event)")
    )
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

    def _run(self, sql: str, params: Any) -> Any:
        with self._translated():
            return self._driver.execute(sql, params).fetchone()

    def insert_event(self, arrival: _Arrival, *, status: str, error: str | None) -> _Inbox:
        params = (arrival.at, arrival.source, arrival.task_uuid, status, arrival.body, error)
        return self._run(self._INSERT_EVENT, params)[0]

    @staticmethod
    def _params(
        task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> dict[str, Any]:
        items = [
            {
                "image_uuid": str(r.image_uuid),
                "image_url": r.image_url,
                "seed": r.seed,
                "nsfw": r.nsfw,
                "cost": None if r.cost is None else str(r.cost),  # exact: numeric from text
                "raw": r._raw,
            }
            for r in results
        ]
        return {
            "task": task_uuid,
            "now": now,
            "items": json.dumps(items, default=_json_default, separators=(",", ":")),
            "failed": error is not None,
            "code": error.code if error else None,
            "message": error.message if error else None,
        }

    @staticmethod
    def _locked(row: Any) -> _Locked | None:
        status, number_results, results_received, stored = row[:4]
        if status is None:
            return None
        return _Locked(JobStatus(status), number_results, results_received, stored)

    def apply(
        self, task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> _Locked | None:
        return self._locked(
            self._run(self._APPLY_ONLY, self._params(task_uuid, results, error, now))
        )

    def insert_event_and_apply(
        self,
        arrival: _Arrival,
        task_uuid: str,
        results: list[ResultItem],
        error: ErrorItem | None,
    ) -> tuple[_Inbox, _Locked | None]:
        params = self._params(task_uuid, results, error, arrival.at)
        params.update(source=arrival.source, event_task=arrival.task_uuid, body=arrival.body)
        found = self._run(self._EVENT_AND_APPLY, params)
        return found[4], self._locked(found)

    def correct_event(self, inbox: _Inbox, outcome: Outcome) -> None:
        with self._translated():
            self._driver.execute(
                self._CORRECT_EVENT, (outcome.inbox_status, outcome.message or None, inbox)
            )


class _CoreStore:
    """The same steps as SQLAlchemy Core statements, for every other backend (SQLite above
    all); the state machine decides in Python."""

    def __init__(self, connection: Connection):
        self._connection = connection

    def insert_event(self, arrival: _Arrival, *, status: str, error: str | None) -> _Inbox:
        return self._connection.execute(
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

    def insert_event_and_apply(
        self,
        arrival: _Arrival,
        task_uuid: str,
        results: list[ResultItem],
        error: ErrorItem | None,
    ) -> tuple[_Inbox, _Locked | None]:
        inbox = self.insert_event(arrival, status="processed", error=None)
        return inbox, self.apply(task_uuid, results, error, arrival.at)

    def apply(
        self, task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> _Locked | None:
        row = self._connection.execute(
            select(Job.id, Job.status, Job.number_results, Job.results_received)
            .where(Job.task_uuid == task_uuid)
            .with_for_update()
        ).one_or_none()
        if row is None:
            return None
        stored = self._insert_images(row.id, results, now)
        job = _Locked(JobStatus(row.status), row.number_results, row.results_received, stored)
        change = _decide(job, error)
        if change.writes:
            values: dict[str, Any] = {}
            if error is not None:
                values.update(error_code=error.code, error_message=error.message)
            if change.status is not None:
                values["status"] = change.status.value
            if change.finishes:
                values["finished_at"] = now
            self._connection.execute(
                update(Job)
                .where(Job.id == row.id)
                .values(results_received=Job.results_received + stored, updated_at=now, **values)
            )
        return job

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
                "raw": r._raw,
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

    def correct_event(self, inbox: _Inbox, outcome: Outcome) -> None:
        self._connection.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == inbox)
            .values(status=outcome.inbox_status, error=outcome.message or None)
        )
