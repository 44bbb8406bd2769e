"""What the state machine makes of a body's news for one job, decided from one rule.

`_events` is the rule that picks the event a job's news makes (fail, complete, result or none),
written once over operands that are either values or SQL expressions: `decide` evaluates it in
Python (the Core store, and every answer to a caller), `DECIDED_STATUS` and `REFUSAL` are the
same rule rendered as the two SQL `CASE`s of the PostgreSQL statement. The statuses an event
leads to, or the refusal it meets, come from the state machine's table (`remixq.states`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Integer, String, case, literal_column, null
from sqlalchemy.dialects.postgresql import psycopg

from remixq.providers.runware.results import ErrorItem
from remixq.states import FINAL, Event, IllegalTransition, JobStatus, next_status


@dataclass(frozen=True)
class Locked:
    """A job as found under its row lock (before this body), and how many images were new."""

    status: JobStatus
    number_results: int
    results_received: int
    stored: int


@dataclass(frozen=True)
class Change:
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
        return self.status in FINAL


def _events(failed: Any, received: Any, stored: Any, expected: Any) -> list[tuple[Any, Event]]:
    """The rule: the first event whose condition holds is the one the news makes (none holds:
    nothing happens). `failed`: the body reports an error for the job; `received`: its results
    stored before; `stored`: the new ones; `expected`: how many it asked for. The operands are
    values (`event_for`) or SQL expressions (`_decision_sql`) alike."""
    return [
        (failed, Event.FAIL),
        (received + stored >= expected, Event.COMPLETE),
        (stored > 0, Event.RESULT),
    ]


def event_for(job: Locked, failed: bool) -> Event | None:
    rule = _events(failed, job.results_received, job.stored, job.number_results)
    return next((event for holds, event in rule if holds), None)


def decide(job: Locked, error: ErrorItem | None) -> Change:
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
    *, failed: str, received: str, stored: str, expected: str, status: str
) -> tuple[str, str]:
    """The rule over the statement's columns: the job's new status, and the refusal message
    of `decide` (NULL when there is none)."""
    column = literal_column(status, String)
    rule = _events(
        literal_column(failed, Boolean),
        literal_column(received, Integer),
        literal_column(stored, Integer),
        literal_column(expected, Integer),
    )
    after, refused = [], []
    for holds, event in rule:
        moves, refusals = _outcomes(event)
        after.append((holds, case(moves, value=column, else_=column) if moves else column))
        refused.append((holds, case(refusals, value=column) if refusals else null()))
    return _sql(case(*after, else_=column)), _sql(case(*refused))


DECIDED_STATUS, REFUSAL = _decision_sql(
    failed="arrival.failed",
    received="job.results_received",
    stored="counted.stored",
    expected="job.number_results",
    status="job.status",
)
