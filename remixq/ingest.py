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
from base64 import b64encode
from collections import defaultdict
from collections.abc import Iterator, Sequence
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


def ingest_batch(
    connection: Connection, deliveries: Sequence[tuple[bytes, str]], *, source: str = "webhook"
) -> list[Outcome]:
    """Several webhooks at once, each `(body, expected_task_uuid)` with the outcome `ingest`
    would give it alone, in as few transactions as the backend allows, committed: every webhook
    is stored, durably, when this returns, or nothing of the batch is (the receiver's group
    commit, `webhook_receiver.group_commit`). `connection` must be outside any transaction.

    On PostgreSQL a batch whose every body is about its own task, one task once (nearly every
    batch), is one statement, run in autocommit: one round trip and one commit for the batch.
    Anything else is one transaction."""
    plan = _Plan(deliveries, source)
    store = _store_for(connection)
    if isinstance(store, _PostgresStore) and plan.one_statement:
        with store.autocommit():
            return plan.run(store)
    with connection.begin():
        return plan.run(store)


class _Plan:
    """A batch of deliveries, read: the bodies about exactly their own task go into rounds that
    hold each task at most once (in arrival order), one statement per round on PostgreSQL; any
    other body (invalid, refused, only still-processing items) takes `ingest`'s path."""

    def __init__(self, deliveries: Sequence[tuple[bytes, str]], source: str):
        now = utcnow()
        self.size = len(deliveries)
        self.others: list[tuple[int, _Arrival, _Parsed | Outcome]] = []
        self.rounds: list[list[_Applied]] = []
        pending: list[_Applied] = []
        for index, (body, expected) in enumerate(deliveries):
            arrival = _Arrival(body, source, expected, now)
            parsed = _read(body, expected)
            if isinstance(parsed, Outcome) or len(parsed.tasks) != 1 or expected is None:
                self.others.append((index, arrival, parsed))
                continue
            task = parsed.tasks[0]
            results, error = parsed.results.get(task, []), parsed.errors.get(task)
            pending.append(_Applied(index, arrival, task, results, error))
        while pending:
            batch: list[_Applied] = []
            later: list[_Applied] = []
            seen: set[str] = set()
            for applied in pending:
                (later if applied.task_uuid in seen else batch).append(applied)
                seen.add(applied.task_uuid)
            self.rounds.append(batch)
            pending = later

    @property
    def one_statement(self) -> bool:
        return not self.others and len(self.rounds) == 1

    def run(self, store: _Store) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * self.size
        for index, arrival, parsed in self.others:
            outcomes[index] = _apply(store, arrival, parsed, None)
        for batch in self.rounds:
            applied_rows = zip(batch, store.insert_events_and_apply(batch), strict=True)
            for applied, (inbox, job) in applied_rows:
                outcome = Outcome("processed")
                orphan = not _account(
                    outcome, applied.task_uuid, applied.results, applied.error, job
                )
                _conclude(store, inbox, outcome, orphans=[applied.task_uuid] * orphan, tasks=1)
                outcomes[applied.index] = outcome
        return [outcome for outcome in outcomes if outcome is not None]


def _ingest(
    connection: Connection,
    body: bytes,
    source: str,
    expected_task_uuid: str | None,
    event: WebhookEvent | None,
) -> Outcome:
    arrival = _Arrival(body, source, expected_task_uuid, utcnow())
    return _apply(_store_for(connection), arrival, _read(body, expected_task_uuid), event)


def _apply(
    store: _Store, arrival: _Arrival, parsed: _Parsed | Outcome, event: WebhookEvent | None
) -> Outcome:
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
            inbox, job = store.insert_events_and_apply(
                [_Applied(0, arrival, task_uuid, results, error)]
            )[0]
        else:
            job = store.apply(task_uuid, results, error, arrival.at)
        if not _account(outcome, task_uuid, results, error, job):
            orphans.append(task_uuid)
    assert inbox is not None  # written with the first task, or above
    _conclude(store, inbox, outcome, orphans=orphans, tasks=len(parsed.tasks))
    return outcome


def _account(
    outcome: Outcome,
    task_uuid: str,
    results: list[ResultItem],
    error: ErrorItem | None,
    job: _Locked | None,
) -> bool:
    """Add what the store did for one task to `outcome`; False when no job has the task."""
    if job is None:
        return False
    change = _decide(job, error)  # what the store did, for the answer
    outcome.images_stored += change.stored
    outcome.duplicates += len(results) - change.stored
    outcome.job_statuses[task_uuid] = (change.status or job.status).value
    if change.message:
        outcome.message = change.message
    return True


def _conclude(
    store: _Store, inbox: _Inbox, outcome: Outcome, *, orphans: list[str], tasks: int
) -> None:
    """An orphan when no task of the body has a job; the inbox row corrected when it was not
    written with the outcome (a store writes it before the body is applied)."""
    if orphans and len(orphans) == tasks:
        outcome.inbox_status = "orphan"
        outcome.message = f"no job has taskUUID {orphans[0]}"
    if isinstance(inbox, WebhookEvent):
        if outcome.inbox_status != "processed" or outcome.message:
            _set_event(inbox, outcome)
    elif (inbox.status, inbox.error) != (outcome.inbox_status, outcome.message or None):
        store.correct_event(inbox, outcome)


def _set_event(event: WebhookEvent, outcome: Outcome) -> None:
    event.status = outcome.inbox_status
    event.error = outcome.message or None


# --- storage ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _InboxRow:
    """An inbox row a store inserted, as it wrote it."""

    id: int
    status: str
    error: str | None


_Inbox = _InboxRow | WebhookEvent  # a replayed body's row is the caller's WebhookEvent


@dataclass(frozen=True)
class _Arrival:
    """A body as it came in: what its inbox row records."""

    body: bytes
    source: str
    task_uuid: str | None
    at: datetime


@dataclass(frozen=True)
class _Applied:
    """A body's items about one task, to be stored with its inbox row (`index`: its place in
    the caller's list)."""

    index: int
    arrival: _Arrival
    task_uuid: str
    results: list[ResultItem]
    error: ErrorItem | None


class _Store(Protocol):
    def insert_event(self, arrival: _Arrival, *, status: str, error: str | None) -> _InboxRow: ...

    def apply(
        self, task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> _Locked | None:
        """Lock the job, insert its new images, move it as the state machine says; None when
        no job has this taskUUID."""

    def insert_events_and_apply(
        self, batch: list[_Applied]
    ) -> list[tuple[_InboxRow, _Locked | None]]:
        """For each of `batch` (no two about the same task): `insert_event` with status
        "processed", then `apply`."""

    def correct_event(self, inbox: _InboxRow, outcome: Outcome) -> None: ...


def _store_for(connection: Connection) -> _Store:
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _PostgresStore(connection)
    return _CoreStore(connection)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):  # as remixq.db stores JSON: exact decimals become numbers
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _items(results: list[ResultItem]) -> list[dict[str, Any]]:
    """A task's new images as the rows the PostgreSQL statement inserts."""
    return [
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


def _refusal(event: Event, column: str) -> str:
    """SQL for the message of `_decide` when the state machine refuses `event` to a job whose
    status is `column` (NULL when it does not)."""
    whens = []
    for status in JobStatus:
        try:
            next_status(status, event)
        except IllegalTransition as exc:
            message = str(exc).replace("'", "''")
            whens.append(f"WHEN '{status.value}' THEN '{message}'")
    return f"CASE {column} {' '.join(whens)} END" if whens else "NULL"


_FINAL_SQL = ", ".join(f"'{s.value}'" for s in (JobStatus.COMPLETED, JobStatus.FAILED))


class _PostgresStore:
    """One statement for a batch of webhooks (of one, most often), sent through psycopg: the
    inbox rows, the jobs' row locks, the image inserts and the jobs' updates are data-modifying
    parts of one WITH query over the batch's arrays, so a batch costs BEGIN, this statement and
    COMMIT. Each job's new status is decided in SQL by the same table as `_decide` (which then
    tells the caller what happened), from values read under the row lock. An arrival without a
    body writes no inbox row (`apply`: a replayed event, a body's second task).

    Every writer locks the jobs' rows in one order (by id), so concurrent batches cannot
    deadlock. The inbox row is written with the outcome `_account` and `_conclude` find, so no
    correction follows it. The jobs are looked up by `task_uuid = ANY(array)`, not by a join
    with the batch's rows: the planner takes a set-returning function for 100 rows and, for the
    generic plan the receiver's connections use, chose to scan the whole jobs table (measured:
    1.1 ms of PostgreSQL CPU per webhook). The statement is sent with its whitespace collapsed:
    psycopg caches the parsing of a query only up to 4,096 characters."""

    _STATEMENT = f"""
        WITH arrival AS (
            SELECT a.ord, a.task, a.event_task, decode(a.body, 'base64') AS body, a.items,
                   a.failed, a.code, a.message
            FROM jsonb_to_recordset(%(batch)s::jsonb) AS a(
                ord int, task uuid, event_task text, body text, items jsonb, failed boolean,
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
            arrival.message, CASE
                WHEN arrival.failed THEN {_status_after(Event.FAIL, "job.status")}
                WHEN job.results_received + counted.stored >= job.number_results
                    THEN {_status_after(Event.COMPLETE, "job.status")}
                WHEN counted.stored > 0 THEN {_status_after(Event.RESULT, "job.status")}
                ELSE job.status
            END AS status, CASE
                WHEN arrival.failed THEN {_refusal(Event.FAIL, "job.status")}
                WHEN job.results_received + counted.stored >= job.number_results
                    THEN {_refusal(Event.COMPLETE, "job.status")}
                WHEN counted.stored > 0 THEN {_refusal(Event.RESULT, "job.status")}
            END AS refusal
            FROM arrival JOIN job ON job.task_uuid = arrival.task
            JOIN counted ON counted.id = job.id
        ), event AS (
            INSERT INTO webhook_events (received_at, source, task_uuid, status, body, error)
            SELECT %(now)s, %(source)s::text, arrival.event_task,
                CASE WHEN decided.id IS NULL THEN 'orphan' ELSE 'processed' END,
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
                    WHEN decided.status <> jobs.status AND decided.status IN ({_FINAL_SQL})
                    THEN %(now)s ELSE jobs.finished_at END,
                error_code = CASE WHEN decided.failed THEN decided.code ELSE jobs.error_code END,
                error_message = CASE
                    WHEN decided.failed THEN decided.message ELSE jobs.error_message END,
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
        ORDER BY arrival.ord"""
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

    def insert_event(self, arrival: _Arrival, *, status: str, error: str | None) -> _InboxRow:
        params = (arrival.at, arrival.source, arrival.task_uuid, status, arrival.body, error)
        with self._translated():
            return _InboxRow(
                self._driver.execute(self._INSERT_EVENT, params).fetchone()[0], status, error
            )

    def _execute(self, batch: list[_Applied], *, events: bool) -> list[Any]:
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
            "batch": json.dumps(rows, default=_json_default, separators=(",", ":")),
            "tasks": "{" + ",".join(a.task_uuid for a in batch) + "}",  # an array literal
            "now": arrivals[0].at,
            "source": arrivals[0].source,
        }
        with self._translated():
            return self._driver.execute(self._STATEMENT, params).fetchall()

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
    def _locked(row: Any) -> _Locked | None:
        status, number_results, results_received, stored = row[:4]
        if status is None:
            return None
        return _Locked(JobStatus(status), number_results, results_received, stored)

    def apply(
        self, task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> _Locked | None:
        arrival = _Arrival(b"", "", None, now)
        (row,) = self._execute([_Applied(0, arrival, task_uuid, results, error)], events=False)
        return self._locked(row)

    def insert_events_and_apply(
        self, batch: list[_Applied]
    ) -> list[tuple[_InboxRow, _Locked | None]]:
        return [
            (_InboxRow(*row[4:7]), self._locked(row)) for row in self._execute(batch, events=True)
        ]

    def correct_event(self, inbox: _InboxRow, outcome: Outcome) -> None:
        with self._translated():
            self._driver.execute(
                self._CORRECT_EVENT, (outcome.inbox_status, outcome.message or None, inbox.id)
            )


class _CoreStore:
    """The same steps as SQLAlchemy Core statements, for every other backend (SQLite above
    all); the state machine decides in Python."""

    def __init__(self, connection: Connection):
        self._connection = connection

    def insert_event(self, arrival: _Arrival, *, status: str, error: str | None) -> _InboxRow:
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
        return _InboxRow(row_id, status, error)

    def insert_events_and_apply(
        self, batch: list[_Applied]
    ) -> list[tuple[_InboxRow, _Locked | None]]:
        return [
            (
                self.insert_event(a.arrival, status="processed", error=None),
                self.apply(a.task_uuid, a.results, a.error, a.arrival.at),
            )
            for a in batch
        ]

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

    def correct_event(self, inbox: _InboxRow, outcome: Outcome) -> None:
        self._connection.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == inbox.id)
            .values(status=outcome.inbox_status, error=outcome.message or None)
        )
