"""One body in the caller's transaction: `ingest` (a webhook, or a replayed inbox row) and
`ingest_poll` (a getResponse answer, already read by the client), and the steps a batch shares
with them: apply a read body through a store, account for what the store did, conclude on the
inbox row."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from remixq.db import json_dumps, utcnow
from remixq.ingest.core import CoreStore
from remixq.ingest.decision import Locked, decide
from remixq.ingest.postgres import PostgresStore
from remixq.ingest.records import (
    DEFAULT_LIMITS,
    Applied,
    Arrival,
    Inbox,
    Limits,
    Outcome,
    Parsed,
    Store,
    by_task,
    read,
)
from remixq.ingest.sqlite import SQLiteStore
from remixq.models import WebhookEvent
from remixq.providers.runware.results import (
    ErrorItem,
    InvalidPayload,
    PollResult,
    RefusedPayload,
    ResultItem,
    poll_envelope,
    poll_items,
)
from remixq.states import InboxStatus


def ingest(
    session: Session,
    *,
    body: bytes,
    source: str = "webhook",
    expected_task_uuid: str | None = None,
    event: WebhookEvent | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Outcome:
    """Store `body` in the inbox (unless replaying `event`) and apply it within `limits`
    (REMIXQ_MAX_IMAGE_COST, REMIXQ_INBOX_MAX_PER_TASK: the caller's settings); never commits.

    `expected_task_uuid` is the task the webhook URL's token was issued for: an item about any
    other task is refused, so one leaked URL cannot write results for other jobs.
    """
    session.flush()  # the statements below bypass the ORM: it must have nothing pending
    arrival = Arrival(body, source, expected_task_uuid, utcnow())
    parsed = read(body, expected_task_uuid, limits)
    return apply(store_for(session.connection(), limits), arrival, parsed, event)


def ingest_poll(session: Session, poll: PollResult, *, limits: Limits = DEFAULT_LIMITS) -> Outcome:
    """Apply what getResponse said about `poll.task_uuid` as a webhook about it would be,
    within the same `limits`; never commits. Its items are applied as the client read them;
    the inbox keeps, with the source `poll`, a webhook body that a replay reads back to the
    same results and errors."""
    session.flush()
    parsed: Parsed | Outcome
    try:
        parsed = by_task(poll_items(poll, max_cost=limits.max_image_cost), poll.task_uuid)
    except RefusedPayload as exc:
        parsed = Outcome(InboxStatus.REJECTED, message=str(exc))
    except InvalidPayload as exc:
        parsed = Outcome(InboxStatus.INVALID, message=str(exc))
    body = json_dumps(poll_envelope(poll)).encode()
    arrival = Arrival(body, "poll", poll.task_uuid, utcnow())
    return apply(store_for(session.connection(), limits), arrival, parsed, None)


def store_for(connection: Connection, limits: Limits) -> Store:
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return PostgresStore(connection, limits)
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        return SQLiteStore(connection, limits)
    return CoreStore(connection, limits)


def apply(
    store: Store, arrival: Arrival, parsed: Parsed | Outcome, event: WebhookEvent | None
) -> Outcome:
    """Keep the arrival in the inbox (or update the replayed `event`) and apply its items
    through `store`; a body that cannot be applied (`parsed` is already its outcome) is only
    kept."""
    if isinstance(parsed, Outcome):
        if event is None:
            row = store.insert_event(
                arrival, status=parsed.inbox_status, error=parsed.message or None
            )
            parsed.kept = row.id is not None
        else:
            _set_event(event, parsed)
        return parsed
    outcome = Outcome(InboxStatus.PROCESSED)
    inbox: Inbox | None = event
    if event is not None:
        _set_event(event, outcome)
    elif not parsed.tasks:  # only items still processing: nothing to apply
        inbox = store.insert_event(arrival, status=InboxStatus.PROCESSED, error=None)
    orphans = []
    for task_uuid in parsed.tasks:
        results = parsed.results.get(task_uuid, [])
        error = parsed.errors.get(task_uuid)
        if inbox is None:
            inbox, job = store.insert_events_and_apply(
                [Applied(0, arrival, task_uuid, results, error)]
            )[0]
        else:
            job = store.apply(task_uuid, results, error, arrival.at)
        if not account(outcome, task_uuid, results, error, job):
            orphans.append(task_uuid)
    assert inbox is not None  # written with the first task, or above
    conclude(store, inbox, outcome, orphans=orphans, tasks=len(parsed.tasks))
    return outcome


def account(
    outcome: Outcome,
    task_uuid: str,
    results: list[ResultItem],
    error: ErrorItem | None,
    job: Locked | None,
) -> bool:
    """Add what the store did for one task to `outcome`; False when no job has the task."""
    if job is None:
        return False
    change = decide(job, error)  # what the store did, for the answer
    outcome.images_stored += change.stored
    # A refused body's images that were stored before are duplicates; its new ones are not.
    outcome.duplicates += len(results) - (job.new if change.rejection else change.stored)
    outcome.job_statuses[task_uuid] = (change.status or job.status).value
    if change.rejection:
        outcome.inbox_status = InboxStatus.REJECTED
        outcome.message = change.rejection
    elif change.message and outcome.inbox_status != InboxStatus.REJECTED:
        outcome.message = change.message
    return True


def conclude(
    store: Store, inbox: Inbox, outcome: Outcome, *, orphans: list[str], tasks: int
) -> None:
    """An orphan when no task of the body has a job; the inbox row corrected when it was not
    written with the outcome (a store writes it before the body is applied), or noted as not
    kept (its task's inbox was full)."""
    if orphans and len(orphans) == tasks:
        outcome.inbox_status = InboxStatus.ORPHAN
        outcome.message = f"no job has taskUUID {orphans[0]}"
    if isinstance(inbox, WebhookEvent):
        if outcome.inbox_status != InboxStatus.PROCESSED or outcome.message:
            _set_event(inbox, outcome)
    elif inbox.id is None:
        outcome.kept = False
    elif (inbox.status, inbox.error) != (outcome.inbox_status, outcome.message or None):
        store.correct_event(inbox, outcome)


def _set_event(event: WebhookEvent, outcome: Outcome) -> None:
    event.status = outcome.inbox_status
    event.error = outcome.message or None
