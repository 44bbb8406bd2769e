"""What the state machine makes of a body's news for one job, decided from one rule.

`_events` is the rule that picks the event a job's news makes (fail, complete, result or none),
written once over operands that are either values or SQL expressions: `decide` evaluates it in
Python (the Core store, and every answer to a caller), `DECIDED_STATUS` and `REFUSAL` are the
same rule rendered as the two SQL `CASE`s of the PostgreSQL statement. The statuses an event
leads to, or the refusal it meets, come from the state machine's table (`remixq.states`).

Before any of it, the cap (`_overflows`; in SQL `OVERFLOWS`, and its message in `REFUSAL`): a job
stores at most `numberResults` distinct images, and none once it is completed. A failed job
still takes its late images within the cap: the provider charged for them (a job expired by the
reconciler, or failed by an error report, whose generation finished after all), and the ledger
must not lose a cent of it; its status stays failed.
A body whose new images would break it is refused whole: none of its images is stored and its
error is not applied, and its inbox row is `rejected` with the reason. A redelivery of stored
images only has no new image, so it stays a harmless duplicate. Whole, not the images that
fit: the provider never sends more than a job asked for, so an over-full body is forged (or
follows forged ones), and storing its first items would let it fill the job's remaining slots
and refuse the genuine images that come after; a body is applied whole or not at all, as a
body that does not validate stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Formatter
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    String,
    case,
    func,
    literal,
    literal_column,
    null,
)
from sqlalchemy.dialects.postgresql import psycopg

from remixq.providers.runware.results import ErrorItem
from remixq.states import FINAL, Event, IllegalTransition, JobStatus, next_status


@dataclass(frozen=True)
class Locked:
    """A job as found under its row lock (before this body): how many distinct images of the
    body were not stored yet (`new`), and how many of them this body stored (`stored`: fewer
    when another transaction stored one first, none when the body is refused)."""

    status: JobStatus
    number_results: int
    results_received: int
    stored: int
    new: int


@dataclass(frozen=True)
class Change:
    """What the state machine makes of one job's new results or error."""

    stored: int
    status: JobStatus | None  # None: the status stays
    error: ErrorItem | None
    message: str  # why a transition was refused, if one was
    rejection: str = ""  # why the whole body was refused (`_overflows`), if it was

    @property
    def writes(self) -> bool:
        return bool(self.stored or self.status is not None or self.error is not None)

    @property
    def finishes(self) -> bool:
        return self.status in FINAL


def _overflows(closed: Any, received: Any, new: Any, expected: Any) -> Any:
    """The cap: the body's `new` distinct images would take the job (`closed`: completed;
    `received`: images stored before; `expected`: its numberResults) past what it asked for,
    or it is closed. Values (`overflows`) or SQL expressions (`OVERFLOWS`) alike."""
    return (new > 0) & (closed | (received + new > expected))


# Statuses that take no new image whatever the count (a completed job has every image it asked
# for: anything more is forged or follows forged images).
CLOSED = frozenset({JobStatus.COMPLETED})


# Why a body broke the cap: the inbox row's error, formatted in Python and rendered in SQL.
_REJECTION = (
    "{new} new images refused: the job asked for {expected}, has {received} and is {status}"
)


def overflows(job: Locked) -> bool:
    return bool(_overflows(job.status in CLOSED, job.results_received, job.new, job.number_results))


def rejection(job: Locked) -> str:
    return _REJECTION.format(
        new=job.new,
        expected=job.number_results,
        received=job.results_received,
        status=job.status.value,
    )


def _events(
    refused: Any, failed: Any, received: Any, stored: Any, expected: Any
) -> list[tuple[Any, Event | None]]:
    """The rule: the first event whose condition holds is the one the news makes (none holds,
    or the body is `refused` by the cap: nothing happens). `failed`: the body reports an error
    for the job; `received`: its results stored before; `stored`: the new ones; `expected`:
    how many it asked for. The operands are values (`event_for`) or SQL expressions
    (`_decision_sql`) alike."""
    return [
        (refused, None),
        (failed, Event.FAIL),
        (received + stored >= expected, Event.COMPLETE),
        (stored > 0, Event.RESULT),
    ]


def event_for(job: Locked, failed: bool) -> Event | None:
    rule = _events(overflows(job), failed, job.results_received, job.stored, job.number_results)
    return next((event for holds, event in rule if holds), None)


def decide(job: Locked, error: ErrorItem | None) -> Change:
    if overflows(job):
        return Change(0, None, None, "", rejection(job))
    event = event_for(job, error is not None)
    status, message = None, ""
    if event is not None:
        try:
            status = next_status(job.status, event)
        except IllegalTransition as exc:
            # e.g. an error report for a job whose every result is already stored: keep the
            # images and the completed status, and say so on the inbox row.
            message = str(exc)
    return Change(job.stored, status, error, message)


# --- the same rule in SQL ---------------------------------------------------------------------


def _outcomes(event: Event) -> tuple[dict[str, str], dict[str, str]]:
    """From the state machine's table: the status each status moves to on `event` (a status
    absent from both maps stays), and the message of each refusal."""
    moves, refusals = {}, {}
    for status in JobStatus:
        try:
            target = next_status(status, event)
        except IllegalTransition as exc:
            refusals[status.value] = str(exc)
        else:
            if target is not None:
                moves[status.value] = target.value
    return moves, refusals


def _sql(expression: ColumnElement[Any]) -> str:
    # Literals escaped for psycopg's %(name)s parameters; SQLAlchemy leaves the dialect untyped.
    dialect = psycopg.dialect()  # type: ignore[no-untyped-call]
    return str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _decision_sql(
    *,
    refused: str,
    rejection: str,
    failed: str,
    received: str,
    stored: str,
    expected: str,
    status: str,
) -> tuple[str, str]:
    """The rule over the statement's columns: the job's new status, and the message for the
    inbox row: the `rejection` of a body refused by the cap, or the refusal of a transition
    (NULL when there is neither)."""
    column = literal_column(status, String)
    null_: ColumnElement[Any] = null()
    rule = _events(
        literal_column(refused, Boolean),
        literal_column(failed, Boolean),
        literal_column(received, Integer),
        literal_column(stored, Integer),
        literal_column(expected, Integer),
    )
    after: list[tuple[Any, ColumnElement[Any]]] = []
    refused_by: list[tuple[Any, ColumnElement[Any]]] = []
    for holds, event in rule:
        if event is None:  # refused by the cap: the status stays, the body is rejected
            after.append((holds, column))
            refused_by.append((holds, literal_column(f"({rejection})", String)))
            continue
        moves, refusals = _outcomes(event)
        targets = set(moves.values())  # one per event (`states.target`)
        moved = case((column.in_(sorted(moves)), targets.pop()), else_=column) if moves else column
        after.append((holds, moved))
        refused_by.append((holds, case(refusals, value=column) if refusals else null_))
    while refused_by and refused_by[-1][1] is null_:  # trailing NULLs: what no branch gives
        refused_by.pop()
    return _sql(case(*after, else_=column)), _sql(case(*refused_by))


def _cap_sql(*, status: str, received: str, new: str, expected: str) -> tuple[str, str]:
    """The cap over the statement's columns: whether the body is refused, and why."""
    job_status = literal_column(status, String)
    columns: dict[str, ColumnElement[Any]] = {
        "status": job_status,
        "received": literal_column(received, Integer),
        "new": literal_column(new, Integer),
        "expected": literal_column(expected, Integer),
    }
    closed = job_status.in_(sorted(s.value for s in CLOSED))
    refused = _overflows(closed, columns["received"], columns["new"], columns["expected"])
    parts: list[ColumnElement[Any]] = []
    for text, name, _, _ in Formatter().parse(_REJECTION):
        if text:
            parts.append(literal(text, String))
        if name:
            parts.append(columns[name])
    return _sql(refused), _sql(func.concat(*parts))


_JOB = {
    "status": "job.status",
    "received": "job.results_received",
    "expected": "job.number_results",
}
OVERFLOWS = _cap_sql(**_JOB, new="fresh.new")[0]  # in the CTE that counts the new images
DECIDED_STATUS, REFUSAL = _decision_sql(
    refused="cap.refused",
    rejection=_cap_sql(**_JOB, new="cap.new")[1],  # in a later CTE, which reads the count
    failed="arrival.failed",
    received="job.results_received",
    stored="counted.stored",
    expected="job.number_results",
    status="job.status",
)
