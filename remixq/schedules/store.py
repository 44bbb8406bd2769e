"""Schedules as stored: added, updated, paused, resumed and removed, and read back with their
history (each occurrence fired or skipped, and its campaign's status and cost).

Each function takes the session keyword-only where it has more than the session and never
commits: the edge owns the transaction. A schedule is found by its name; the row is locked
(`FOR UPDATE`) by every change, so a change and a firing round take turns.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from remixq.budgets import KEEP, Keep, check_budget, usd
from remixq.errors import FieldError, InvalidInput
from remixq.models import Campaign, Schedule, ScheduleOccurrence
from remixq.producing import insert_or_ignore
from remixq.reports import CampaignSummary, summaries_of
from remixq.schedules.cron import Cron, parse_cron, zone
from remixq.schedules.sources import Rules, read_source
from remixq.states import CatchUp

NAME_ALLOWED = (
    "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
    " (a campaign of the schedule is named NAME@<occurrence time>)"
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_CATCH_UP = 1000
CATCH_UP_ALLOWED = "one of " + ", ".join(c.value for c in CatchUp)
_occurrences = ScheduleOccurrence.metadata.tables[ScheduleOccurrence.__tablename__]
_schedules = Schedule.metadata.tables[Schedule.__tablename__]


class UnknownSchedule(InvalidInput):
    """A name no schedule has: an HTTP edge answers 404, the CLI one line."""

    def __init__(self, name: object):
        self.name = name
        super().__init__([FieldError("NAME", name, "the name of an existing schedule")])


class ScheduleNameTaken(InvalidInput):
    """A new schedule under a name another has: an HTTP edge answers 409."""

    code = "schedule_name_taken"

    def __init__(self, name: str):
        self.name = name
        super().__init__(
            [
                FieldError(
                    "name",
                    name,
                    "a name no schedule has; change that one with `schedule update`, or remove"
                    " it first",
                )
            ]
        )


@dataclass(frozen=True)
class Definition:
    """A schedule as checked, ready to store: every part valid, the file read once."""

    name: str
    cron: Cron
    source: str
    source_name: str
    budget_usd: Decimal | None
    catch_up: CatchUp
    catch_up_max: int


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput([FieldError("name", name, NAME_ALLOWED)])
    return name


def check_definition(
    *,
    name: object,
    cron: object,
    timezone: object,
    source: str | InvalidInput,
    source_name: str,
    budget_usd: object,
    catch_up: object,
    catch_up_max: object,
    rules: Rules,
) -> Definition:
    """Every part checked, every error at once (InvalidInput): the name, the cron expression
    and its time zone, the policy and its cap, the budget and the file (read as each
    occurrence will read it; `source` is the refusal of a file that could not be read)."""
    errors: list[FieldError] = []

    def collect(check: Any, *args: Any) -> Any:
        try:
            return check(*args)
        except InvalidInput as exc:
            errors.extend(exc.errors)
            return None

    checked_name = collect(check_name, name)
    checked_cron = collect(parse_cron, cron, timezone)
    policy = collect(_catch_up, catch_up)
    cap = collect(_catch_up_max, catch_up_max)
    budget = None if budget_usd is None else collect(check_budget, budget_usd)
    if isinstance(source, InvalidInput):
        errors.extend(source.errors)
    else:
        try:
            read_source(source, source_name, rules)
        except InvalidInput as exc:
            errors.extend(_in_file(error, source_name) for error in exc.errors)
    if errors or isinstance(source, InvalidInput):
        raise InvalidInput(errors)
    return Definition(checked_name, checked_cron, source, source_name, budget, policy, cap)


def _in_file(error: FieldError, file_name: str) -> FieldError:
    """A refusal of the file's content, located in the file (`tins.yaml: line 3`): a schedule's
    errors name other parts too. An error of the file itself names it already."""
    if error.field.lower() == "file":
        return error
    where = f"{file_name}: {error.location}" if error.location else file_name
    return replace(error, location=where)


def _catch_up(value: object) -> CatchUp:
    if isinstance(value, str) and value in {c.value for c in CatchUp}:
        return CatchUp(value)
    raise InvalidInput([FieldError("catch_up", value, CATCH_UP_ALLOWED)])


def _catch_up_max(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CATCH_UP:
        raise InvalidInput(
            [
                FieldError(
                    "catch_up_max",
                    value,
                    f"a whole number from 1 to {MAX_CATCH_UP}: the most missed occurrences the"
                    " `all` policy fires",
                )
            ]
        )
    return value


def add(session: Session, definition: Definition, *, now: datetime) -> Schedule:
    """Store a new schedule, its first occurrence the first after `now`; ScheduleNameTaken
    when the name is in use (an insert-or-ignore: two adds racing on one name make one)."""
    found = definition.cron
    inserted = session.execute(
        insert_or_ignore(session, _schedules)
        .values(
            name=definition.name,
            cron=found.expression,
            timezone=found.timezone,
            source=definition.source,
            source_name=definition.source_name,
            budget_usd=definition.budget_usd,
            catch_up=definition.catch_up.value,
            catch_up_max=definition.catch_up_max,
            next_due_at=found.next_after(now),
            created_at=now,
            updated_at=now,
        )
        .returning(_schedules.c.id)
    ).scalar()
    if inserted is None:
        raise ScheduleNameTaken(definition.name)
    return session.get_one(Schedule, inserted)


def find(session: Session, name: object, *, lock: bool = False) -> Schedule:
    """The schedule `name` (its row locked until the transaction ends, if `lock`), or
    UnknownSchedule."""
    query = select(Schedule).where(Schedule.name == name)
    if lock:
        query = query.with_for_update()
    found = (
        session.scalar(query.execution_options(populate_existing=True))
        if isinstance(name, str)
        else None
    )
    if found is None:
        raise UnknownSchedule(name)
    return found


def change(
    session: Session,
    name: str,
    *,
    now: datetime,
    rules: Rules,
    cron: str | None = None,
    timezone: str | None = None,
    source: tuple[str, str] | None = None,
    budget_usd: object = KEEP,
    catch_up: str | None = None,
    catch_up_max: int | None = None,
) -> Schedule:
    """Change what is given (None and KEEP: as it is); the whole checked again as `add` checks
    it, nothing changed on a refusal. `source` is a new file's (text, name): from now on each
    occurrence makes its campaign from it. A new cron expression or time zone starts again from
    the first occurrence after `now` (missed occurrences of the old one are dropped)."""
    schedule = find(session, name, lock=True)
    text, source_name = source if source is not None else (schedule.source, schedule.source_name)
    definition = check_definition(
        name=schedule.name,
        cron=schedule.cron if cron is None else cron,
        timezone=schedule.timezone if timezone is None else timezone,
        source=text,
        source_name=source_name,
        budget_usd=schedule.budget_usd if isinstance(budget_usd, Keep) else budget_usd,
        catch_up=schedule.catch_up if catch_up is None else catch_up,
        catch_up_max=schedule.catch_up_max if catch_up_max is None else catch_up_max,
        rules=rules,
    )
    retimed = (definition.cron.expression, definition.cron.timezone) != (
        schedule.cron,
        schedule.timezone,
    )
    schedule.cron = definition.cron.expression
    schedule.timezone = definition.cron.timezone
    schedule.source, schedule.source_name = definition.source, definition.source_name
    schedule.budget_usd = definition.budget_usd
    schedule.catch_up = definition.catch_up.value
    schedule.catch_up_max = definition.catch_up_max
    if retimed:
        schedule.next_due_at = definition.cron.next_after(now)
    schedule.updated_at = now
    session.flush()
    return schedule


def pause(session: Session, name: str, *, now: datetime) -> bool:
    """Pause the schedule: nothing of it fires until a resume. False when it was paused."""
    schedule = find(session, name, lock=True)
    if schedule.paused_at is not None:
        return False
    schedule.paused_at = now
    schedule.updated_at = now
    session.flush()
    return True


def resume(session: Session, name: str, *, now: datetime) -> bool:
    """Resume the schedule from the first occurrence after `now`: the occurrences of the pause
    are not caught up (nor recorded). False when it was not paused."""
    schedule = find(session, name, lock=True)
    if schedule.paused_at is None:
        return False
    schedule.paused_at = None
    schedule.next_due_at = parse_cron(schedule.cron, schedule.timezone).next_after(now)
    schedule.updated_at = now
    session.flush()
    return True


def remove(session: Session, name: str) -> int:
    """Remove the schedule and its history; its campaigns stay (no longer linked to it).
    Returns how many occurrences its history held."""
    schedule = find(session, name, lock=True)
    session.execute(
        update(Campaign).where(Campaign.schedule_id == schedule.id).values(schedule_id=None)
    )
    removed = session.scalar(
        select(func.count()).where(_occurrences.c.schedule_id == schedule.id)
    )
    session.execute(delete(_occurrences).where(_occurrences.c.schedule_id == schedule.id))
    session.execute(delete(_schedules).where(_schedules.c.id == schedule.id))
    session.expunge(schedule)
    return int(removed or 0)


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OccurrenceView:
    """One occurrence: when (UTC, and on the schedule's clock), fired or skipped and why, and
    its campaign's name, status and figures (None when skipped, or the campaign is gone)."""

    id: int
    occurrence_at: datetime
    local_at: datetime
    status: str
    reason: str | None
    campaign_id: int | None
    campaign: CampaignSummary | None = None

    def to_json(self) -> dict[str, Any]:
        summary = self.campaign
        return {
            "id": self.id,
            "occurrence_at": self.local_at.isoformat(),
            "occurrence_at_utc": self.occurrence_at.isoformat(),
            "status": self.status,
            "reason": self.reason,
            "campaign_id": self.campaign_id,
            "campaign": None if summary is None else summary.name,
            "campaign_status": None if summary is None else summary.outcome,
            "jobs": None if summary is None else summary.jobs,
            "images": None if summary is None else summary.images,
            "cost_usd": None if summary is None else usd(summary.cost_usd),
        }


@dataclass(frozen=True)
class ScheduleView:
    """A schedule at a glance: its definition, its next occurrence (None while paused) and its
    last recorded one, and how many it fired and skipped."""

    id: int
    name: str
    cron: str
    timezone: str
    catch_up: str
    catch_up_max: int
    budget_usd: Decimal | None
    source_name: str
    paused_at: datetime | None
    created_at: datetime
    updated_at: datetime
    next_at: datetime | None
    last: OccurrenceView | None
    fired: int
    skipped: int
    last_fired_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        clock = zone(self.timezone)

        def local(at: datetime | None) -> str | None:
            return None if at is None else at.astimezone(clock).isoformat()

        return {
            "id": self.id,
            "name": self.name,
            "cron": self.cron,
            "timezone": self.timezone,
            "catch_up": self.catch_up,
            "catch_up_max": self.catch_up_max,
            "budget_usd": None if self.budget_usd is None else usd(self.budget_usd),
            "file": self.source_name,
            "paused": self.paused_at is not None,
            "paused_at": local(self.paused_at),
            "created_at": local(self.created_at),
            "updated_at": local(self.updated_at),
            "next_occurrence_at": local(self.next_at),
            "last_fired_at": local(self.last_fired_at),
            "last_occurrence": None if self.last is None else self.last.to_json(),
            "fired": self.fired,
            "skipped": self.skipped,
        }


def views(
    session: Session, *, after_id: int | None = None, limit: int | None = None
) -> list[ScheduleView]:
    """The schedules by id (after `after_id`, at most `limit`), each with its last occurrence
    and its counts: four queries whatever their number."""
    query = select(Schedule).order_by(Schedule.id)
    if after_id is not None:
        query = query.where(Schedule.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    schedules = session.scalars(query).all()
    return _views(session, schedules)


def view(session: Session, name: str) -> ScheduleView:
    return _views(session, [find(session, name)])[0]


def _views(session: Session, schedules: Any) -> list[ScheduleView]:
    ids = [s.id for s in schedules]
    if not ids:
        return []
    counts: Counter[tuple[int, str]] = Counter()
    for schedule_id, status, count in session.execute(
        select(ScheduleOccurrence.schedule_id, ScheduleOccurrence.status, func.count())
        .where(ScheduleOccurrence.schedule_id.in_(ids))
        .group_by(ScheduleOccurrence.schedule_id, ScheduleOccurrence.status)
    ):
        counts[(schedule_id, status)] = count
    latest = (
        select(func.max(ScheduleOccurrence.occurrence_at))
        .where(ScheduleOccurrence.schedule_id == Schedule.id)
        .correlate(Schedule)
        .scalar_subquery()
    )
    last_rows = session.scalars(
        select(ScheduleOccurrence)
        .join(Schedule, Schedule.id == ScheduleOccurrence.schedule_id)
        .where(Schedule.id.in_(ids), ScheduleOccurrence.occurrence_at == latest)
    ).all()
    by_schedule = {s.id: s for s in schedules}
    lasts = {row.schedule_id: _occurrence(row, by_schedule[row.schedule_id]) for row in last_rows}
    lasts = _with_campaigns(session, lasts)
    return [
        ScheduleView(
            id=s.id,
            name=s.name,
            cron=s.cron,
            timezone=s.timezone,
            catch_up=s.catch_up,
            catch_up_max=s.catch_up_max,
            budget_usd=s.budget_usd,
            source_name=s.source_name,
            paused_at=s.paused_at,
            created_at=s.created_at,
            updated_at=s.updated_at,
            next_at=None if s.paused_at is not None else s.next_due_at,
            last=lasts.get(s.id),
            fired=counts[(s.id, "fired")],
            skipped=counts[(s.id, "skipped")],
            last_fired_at=s.last_fired_at,
        )
        for s in schedules
    ]


def history(
    session: Session, schedule: Schedule, *, before_id: int | None = None, limit: int = 50
) -> list[OccurrenceView]:
    """The schedule's occurrences, the latest recorded first (before id `before_id`, at most
    `limit`), each with its campaign's status and figures."""
    query = (
        select(ScheduleOccurrence)
        .where(ScheduleOccurrence.schedule_id == schedule.id)
        .order_by(ScheduleOccurrence.occurrence_at.desc(), ScheduleOccurrence.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        before = session.get(ScheduleOccurrence, before_id)
        if before is None or before.schedule_id != schedule.id:
            raise InvalidInput([FieldError("cursor", before_id, "a page's next_cursor")])
        query = query.where(
            (ScheduleOccurrence.occurrence_at < before.occurrence_at)
            | (
                (ScheduleOccurrence.occurrence_at == before.occurrence_at)
                & (ScheduleOccurrence.id < before.id)
            )
        )
    rows = session.scalars(query).all()
    found = _with_campaigns(session, {row.id: _occurrence(row, schedule) for row in rows})
    return [found[row.id] for row in rows]


def _occurrence(row: ScheduleOccurrence, schedule: Schedule) -> OccurrenceView:
    return OccurrenceView(
        id=row.id,
        occurrence_at=row.occurrence_at,
        local_at=row.occurrence_at.astimezone(zone(schedule.timezone)),
        status=row.status,
        reason=row.reason,
        campaign_id=row.campaign_id,
    )


def _with_campaigns(
    session: Session, found: dict[int, OccurrenceView]
) -> dict[int, OccurrenceView]:
    summaries = summaries_of(
        session, [o.campaign_id for o in found.values() if o.campaign_id is not None]
    )
    return {
        key: replace(o, campaign=summaries.get(o.campaign_id)) if o.campaign_id else o
        for key, o in found.items()
    }
