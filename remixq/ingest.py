"""Ingestion of provider results: webhooks, getResponse answers and inbox replays, one path.

The raw body goes into the inbox first; then each result item becomes an image row inserted
once (a redelivery is a no-op thanks to the unique imageUUID), the job's received count moves by
the rows actually inserted, and the state machine completes or fails the job. Nothing is written
to the image table from a body that does not validate as a whole.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal
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
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
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
    if event is None:
        event = store_raw(session, body=body, source=source, task_uuid=expected_task_uuid)
    try:
        results, errors, _processing = split_items(parse_body(body))
    except InvalidPayload as exc:
        return _close(event, Outcome("invalid", message=str(exc)))
    tasks = {str(r.task_uuid) for r in results} | {str(e.task_uuid) for e in errors}
    if expected_task_uuid is not None and tasks - {str(UUID(expected_task_uuid))}:
        stray = sorted(tasks - {str(UUID(expected_task_uuid))})[0]
        return _close(
            event,
            Outcome(
                "rejected",
                message=f"taskUUID {stray} is not the task this webhook URL was issued for",
            ),
        )
    outcome = Outcome("processed")
    by_task: dict[str, list[ResultItem]] = defaultdict(list)
    for result in results:
        by_task[str(result.task_uuid)].append(result)
    errors_by_task = {str(e.task_uuid): e for e in errors}
    orphans = []
    for task_uuid in sorted(tasks):
        job = session.scalar(select(Job).where(Job.task_uuid == task_uuid).with_for_update())
        if job is None:
            orphans.append(task_uuid)
            continue
        _apply(session, job, by_task.get(task_uuid, []), errors_by_task.get(task_uuid), outcome)
    if orphans and len(orphans) == len(tasks):
        outcome.inbox_status = "orphan"
        outcome.message = f"no job has taskUUID {orphans[0]}"
    return _close(event, outcome)


def _close(event: WebhookEvent, outcome: Outcome) -> Outcome:
    event.status = outcome.inbox_status
    event.error = outcome.message or None
    return outcome


def _apply(
    session: Session, job: Job, results: list[ResultItem], error: ErrorItem | None, outcome: Outcome
) -> None:
    stored = _insert_images(session, job.id, results)
    outcome.images_stored += stored
    outcome.duplicates += len(results) - stored
    received = job.results_received + stored
    status = JobStatus(job.status)
    values: dict[str, Any] = {}
    if error is not None:
        event: Event | None = Event.FAIL
        values.update(error_code=error.code, error_message=error.message)
    elif received >= job.number_results:
        event = Event.COMPLETE
    elif stored:
        event = Event.RESULT
    else:
        event = None
    new_status = None
    if event is not None:
        try:
            new_status = next_status(status, event)
        except IllegalTransition as exc:
            # e.g. an error report for a job whose every result is already stored: keep the
            # images and the completed status, and say so on the inbox row.
            outcome.message = str(exc)
    if new_status in (JobStatus.COMPLETED, JobStatus.FAILED):
        values["finished_at"] = utcnow()
    if new_status is not None:
        values["status"] = new_status.value
    if stored or values:
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(results_received=Job.results_received + stored, updated_at=utcnow(), **values)
        )
    outcome.job_statuses[str(job.task_uuid)] = (new_status or status).value


def _insert_images(session: Session, job_id: int, results: list[ResultItem]) -> int:
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
            "created_at": utcnow(),
        }
        for r in results
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(Image)
        .on_conflict_do_nothing(index_elements=["image_uuid"])
        .returning(Image.image_uuid)
    )
    return len(session.execute(stmt, rows).all())
