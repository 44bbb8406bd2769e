"""Firing: each due occurrence of each active schedule becomes one campaign, exactly once.

A round (`fire_due`, run under beat every REMIXQ_SCHEDULE_INTERVAL seconds) looks at the
schedules whose `next_due_at` has come. For each, in a transaction holding its row
(`FOR UPDATE SKIP LOCKED`: another beat's round passes it by), it lists the occurrences from
`next_due_at` to now, lets the catch-up policy decide which fire (`plan`), records the skipped
ones, and fires the first that fires: the occurrence's row, its campaign and the campaign's jobs
are inserted in that one transaction, the row first, with an insert-or-ignore on the unique
(schedule, occurrence) pair. An occurrence someone recorded already (a second beat, a beat
restarted mid-fire, on SQLite where rows are not locked) is a no-op, never a second campaign.
The jobs are handed to the broker after the commit, as `remixq submit` does; any the broker
does not take (down, or this process died) are the relay's.

An occurrence is on time while `late_after` (REMIXQ_SCHEDULE_LATE_AFTER) has not passed since
its time; after that it was missed, because no beat (or no worker) ran then. On-time
occurrences always fire; the policy decides for the missed ones:

- ``skip``: none fires; each is recorded as skipped, with the reason;
- ``latest``: the most recent fires, the others are recorded as skipped;
- ``all``: the most recent ``catch_up_max`` fire (oldest first), the older ones are skipped.

At most `MAX_RECORDED` missed occurrences are recorded one by one; the oldest of those says
that every earlier one since the schedule's last was missed too (a week of an every-minute
schedule is ten thousand rows nobody reads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from remixq import producing
from remixq.db import transaction, utcnow
from remixq.errors import FieldError, InvalidInput
from remixq.models import Campaign, Schedule, ScheduleOccurrence
from remixq.pricing import PriceTable
from remixq.schedules.cron import Cron, parse_cron
from remixq.schedules.sources import Rules, Source, read_source
from remixq.schedules.store import find
from remixq.states import CatchUp, OccurrenceStatus
from remixq.submission import Enqueue, hand_over

MAX_RECORDED = 1000
_occurrences = ScheduleOccurrence.metadata.tables[ScheduleOccurrence.__tablename__]


@dataclass(frozen=True)
class Step:
    """What becomes of one due occurrence: fired or skipped, and why."""

    at: datetime
    fire: bool
    reason: str


def plan(
    due: Sequence[datetime],
    *,
    now: datetime,
    catch_up: CatchUp,
    cap: int,
    late_after: timedelta,
    earlier_missed: bool = False,
) -> list[Step]:
    """The steps of the due occurrences (`due`, earliest first): on-time ones fire, missed ones
    as the policy says (module docstring); `earlier_missed`: occurrences before `due[0]` were
    missed too, and are told of in its reason."""
    missed = [at for at in due if now - at > late_after]
    late_ones = set(missed)
    firing: set[datetime] = set()
    if catch_up is CatchUp.LATEST:
        firing = set(missed[-1:])
    elif catch_up is CatchUp.ALL:
        firing = set(missed[-cap:])
    late = f"missed: not fired within {_seconds(late_after)} of its time (no beat or worker ran)"
    why_skipped = {
        CatchUp.SKIP: f"{late}; catch-up skip",
        CatchUp.LATEST: f"{late}; catch-up latest fired the latest missed occurrence instead",
        CatchUp.ALL: f"{late}; catch-up all fired the latest {cap} missed occurrences only",
    }[catch_up]
    steps = []
    for at in due:
        if at not in late_ones:
            steps.append(Step(at, True, "due"))
        elif at in firing:
            steps.append(Step(at, True, f"{late}; fired late by catch-up {catch_up.value}"))
        else:
            steps.append(Step(at, False, why_skipped))
    if earlier_missed and steps:
        first = steps[0]
        more = "; so was every occurrence before it since the last recorded one"
        steps[0] = Step(first.at, first.fire, first.reason + more)
    return steps


def _seconds(span: timedelta) -> str:
    return f"{span.total_seconds():g} s"


def due_occurrences(cron: Cron, since: datetime, now: datetime) -> tuple[list[datetime], bool]:
    """The occurrences from `since` (included) to `now` (included), earliest first, at most the
    latest MAX_RECORDED; and whether earlier ones were left out."""
    found: list[datetime] = []
    for at in cron.until(now):
        if at < since:
            break
        if len(found) == MAX_RECORDED:
            return found[::-1], True
        found.append(at)
    return found[::-1], False


@dataclass(frozen=True)
class Fired:
    """One occurrence this process recorded: its campaign (None: skipped, `reason` says why),
    the jobs it made, and the broker's error if they are not all handed over."""

    schedule: str
    occurrence_at: datetime
    campaign_id: int | None
    campaign: str | None
    reason: str
    job_ids: list[int] = field(default_factory=list)
    broker_error: str | None = None


@dataclass
class Round:
    """What a round did: the occurrences it fired (and those it could not), how many it
    recorded as skipped, and the schedules it could not read (a stored time zone that the
    system's zone data no longer has, a file today's settings refuse...)."""

    fired: list[Fired] = field(default_factory=list)
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def campaign_name(schedule: str, cron: Cron, at: datetime) -> str:
    """`NAME@<occurrence time, ISO 8601 with the offset of the schedule's zone>`."""
    return f"{schedule}@{cron.local(at).isoformat()}"


def fire_due(
    sessions: sessionmaker[Session],
    *,
    rules: Rules,
    prices: PriceTable,
    late_after: timedelta,
    enqueue: Enqueue | None,
    now: datetime | None = None,
    limit: int = 100,
) -> Round:
    """One round: every occurrence due by `now` (default: the clock) of the active schedules
    (at most `limit` schedules, the longest due first) recorded, each fired one's campaign made
    and its jobs handed to the broker (`enqueue`; None: the relay does)."""
    now = now or utcnow()
    done = Round()
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Schedule.id)
                .where(Schedule.paused_at.is_(None), Schedule.next_due_at <= now)
                .order_by(Schedule.next_due_at, Schedule.id)
                .limit(limit)
            )
        )
    for schedule_id in ids:
        _fire_schedule(sessions, schedule_id, now, done, rules, prices, late_after, enqueue)
    return done


def _fire_schedule(
    sessions: sessionmaker[Session],
    schedule_id: int,
    now: datetime,
    done: Round,
    rules: Rules,
    prices: PriceTable,
    late_after: timedelta,
    enqueue: Enqueue | None,
) -> None:
    """Record the schedule's due occurrences, one fired occurrence per transaction."""
    sources: dict[tuple[str, str], Source | InvalidInput] = {}
    while True:
        fired = None
        with transaction(sessions) as session:
            schedule = session.scalar(
                select(Schedule)
                .where(Schedule.id == schedule_id)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
            if (
                schedule is None  # removed, or another round holds it
                or schedule.paused_at is not None
                or schedule.next_due_at is None
                or schedule.next_due_at > now
            ):
                return
            try:
                cron = parse_cron(schedule.cron, schedule.timezone)
            except InvalidInput as exc:
                done.errors.append(f"schedule {schedule.name!r}: {exc}")
                return
            due, earlier = due_occurrences(cron, schedule.next_due_at, now)
            steps = plan(
                due,
                now=now,
                catch_up=CatchUp(schedule.catch_up),
                cap=schedule.catch_up_max,
                late_after=late_after,
                earlier_missed=earlier,
            )
            first = next((n for n, step in enumerate(steps) if step.fire), len(steps))
            done.skipped += _record_skipped(session, schedule, steps[:first], now)
            if first < len(steps):
                step = steps[first]
                key = (schedule.source_name, schedule.source)
                if key not in sources:
                    sources[key] = _read(schedule, rules)
                fired = _fire(session, schedule, cron, step.at, step.reason, sources[key], prices)
                rest = steps[first + 1 :]
                schedule.next_due_at = rest[0].at if rest else cron.next_after(now)
            else:
                rest = []
                schedule.next_due_at = cron.next_after(now)
        if fired is not None:
            done.fired.append(_handed_over(fired, enqueue, sessions))
        if not rest:
            return


def _read(schedule: Schedule, rules: Rules) -> Source | InvalidInput:
    try:
        return read_source(schedule.source, schedule.source_name, rules)
    except InvalidInput as exc:
        return exc


def _record_skipped(
    session: Session, schedule: Schedule, steps: Sequence[Step], now: datetime
) -> int:
    if not steps:
        return 0
    rows = [
        {
            "schedule_id": schedule.id,
            "occurrence_at": step.at,
            "status": OccurrenceStatus.SKIPPED.value,
            "reason": step.reason,
            "created_at": now,
        }
        for step in steps
    ]
    inserted = session.execute(
        producing.insert_or_ignore(session, _occurrences).returning(_occurrences.c.id), rows
    ).all()
    return len(inserted)


def _fire(
    session: Session,
    schedule: Schedule,
    cron: Cron,
    at: datetime,
    reason: str,
    source: Source | InvalidInput,
    prices: PriceTable,
    *,
    record_refusal: bool = True,
) -> Fired | None:
    """Record occurrence `at` as fired and make its campaign and jobs, in the caller's
    transaction; None when it was recorded already (nothing made). A campaign that cannot be
    made (the file refused by today's settings, the estimates past the budget, the name taken)
    leaves the occurrence skipped with the reason, or (`record_refusal` False) raises."""
    occurrence_id = session.execute(
        producing.insert_or_ignore(session, _occurrences)
        .values(
            schedule_id=schedule.id,
            occurrence_at=at,
            status=OccurrenceStatus.FIRED.value,
            reason=reason,
            created_at=utcnow(),
        )
        .returning(_occurrences.c.id)
    ).scalar()
    if occurrence_id is None:
        return None
    name = campaign_name(schedule.name, cron, at)
    try:
        if isinstance(source, InvalidInput):
            raise source
        with session.begin_nested():
            campaign_id, job_ids = _make_campaign(session, schedule, name, source, prices)
    except InvalidInput as exc:
        if not record_refusal:
            raise
        refused = f"not fired: {exc}"
        _set(session, occurrence_id, status=OccurrenceStatus.SKIPPED.value, reason=refused)
        return Fired(schedule.name, at, None, None, refused)
    _set(session, occurrence_id, campaign_id=campaign_id)
    if schedule.last_fired_at is None or at > schedule.last_fired_at:
        schedule.last_fired_at = at
    return Fired(schedule.name, at, campaign_id, name, reason, job_ids)


def _make_campaign(
    session: Session, schedule: Schedule, name: str, source: Source, prices: PriceTable
) -> tuple[int, list[int]]:
    budget = schedule.budget_usd if schedule.budget_usd is not None else source.spec_budget
    campaign_id = producing.create_campaign(
        session,
        name=name,
        source=f"schedule {schedule.name}",
        budget_usd=budget,
        schedule_id=schedule.id,
    )
    if campaign_id is None:
        raise InvalidInput(
            [FieldError("campaign", name, "a campaign name not in use; another campaign has it")]
        )
    campaign = session.get_one(Campaign, campaign_id)
    campaign.failover = source.spec_failover  # the spec's failover (remixq.failover), if any
    job_ids = producing.create_jobs(session, campaign=campaign, new_jobs=source.jobs, prices=prices)
    return campaign_id, job_ids


def _set(session: Session, occurrence_id: int, **values: Any) -> None:
    session.execute(update(_occurrences).where(_occurrences.c.id == occurrence_id).values(**values))


def _handed_over(fired: Fired, enqueue: Enqueue | None, sessions: sessionmaker[Session]) -> Fired:
    if not fired.job_ids:
        return fired
    broker_error = hand_over(enqueue, sessions, fired.job_ids)
    return Fired(
        fired.schedule,
        fired.occurrence_at,
        fired.campaign_id,
        fired.campaign,
        fired.reason,
        fired.job_ids,
        broker_error,
    )


def run_now(
    sessions: sessionmaker[Session],
    name: str,
    *,
    rules: Rules,
    prices: PriceTable,
    enqueue: Enqueue | None,
    now: datetime | None = None,
) -> Fired:
    """Fire one occurrence of schedule `name` now (whole seconds), paused or not, besides its
    own times; InvalidInput, nothing stored, when its campaign cannot be made or an occurrence
    has that very second already."""
    at = (now or utcnow()).replace(microsecond=0)
    with transaction(sessions) as session:
        schedule = find(session, name, lock=True)
        cron = parse_cron(schedule.cron, schedule.timezone)
        source = read_source(schedule.source, schedule.source_name, rules)
        fired = _fire(
            session,
            schedule,
            cron,
            at,
            "run now (schedule run)",
            source,
            prices,
            record_refusal=False,
        )
        if fired is None:
            raise InvalidInput(
                [
                    FieldError(
                        "NAME",
                        name,
                        f"a schedule without an occurrence at {cron.local(at).isoformat()};"
                        " it has one: run it again in a second",
                    )
                ]
            )
    return _handed_over(fired, enqueue, sessions)
