"""Schedules on both backends, driven with an explicit `now`: every catch-up policy after an
outage, exactly-once firing (a second round at the same occurrence makes nothing), the
campaign each occurrence makes, refusals recorded as skipped, pause/resume/remove, run now
and the history."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from remixq.db import make_engine, make_sessionmaker, transaction
from remixq.errors import InvalidInput
from remixq.models import Campaign, Job, Schedule, ScheduleOccurrence
from remixq.pricing import PriceTable
from remixq.schedules import store
from remixq.schedules.firing import MAX_RECORDED, Round, fire_due, run_now
from remixq.schedules.sources import Rules
from remixq.url_policy import UrlPolicy
from tests.support.databases import recreate_pg_database, scratch_pg_url

RULES = Rules(UrlPolicy(), max_jobs=100)
LATE = timedelta(seconds=120)
# Two jobs per occurrence, 0.06 USD each (ideogram:4@2 at the DEFAULT speed).
SPEC = """\
defaults:
  model: "ideogram:4@2"
  width: 1024
  height: 1024
  inputs: {referenceImages: ["https://assets.example.test/in.jpg"]}
matrix:
  positivePrompt: ["a tea tin, autumn", "a tea tin, winter"]
"""
# Monday 2027-03-01 09:00 in Berlin is 08:00 UTC.
T0 = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions whose transactions are savepoints of one transaction rolled back at the end."""
    connection = engine.connect()
    outer = connection.begin()
    try:
        yield sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
    finally:
        outer.rollback()
        connection.close()


def add(
    sessions: sessionmaker[Session],
    *,
    name: str = "tins",
    cron: str = "*/10 * * * *",
    now: datetime = T0,
    catch_up: str = "latest",
    cap: int = 10,
    budget: str | None = None,
    source: str = SPEC,
    source_name: str = "tins.yaml",
) -> int:
    definition = store.check_definition(
        name=name,
        cron=cron,
        timezone="Europe/Berlin",
        source=source,
        source_name=source_name,
        budget_usd=budget,
        catch_up=catch_up,
        catch_up_max=cap,
        rules=RULES,
    )
    with transaction(sessions) as session:
        return store.add(session, definition, now=now).id


def fire(
    sessions: sessionmaker[Session], now: datetime, enqueued: list[list[int]] | None = None
) -> Round:
    def enqueue(_sessions: sessionmaker[Session], job_ids: Sequence[int]) -> None:
        assert enqueued is not None
        with _sessions() as session:  # handed over after the commit: the jobs are there
            assert session.scalar(select(func.count()).where(Job.id.in_(job_ids))) == len(job_ids)
        enqueued.append(list(job_ids))

    return fire_due(
        sessions,
        rules=RULES,
        prices=PriceTable.default(),
        late_after=LATE,
        enqueue=enqueue if enqueued is not None else None,
        now=now,
    )


def occurrences(sessions: sessionmaker[Session], schedule_id: int) -> list[ScheduleOccurrence]:
    with sessions() as session:
        return list(
            session.scalars(
                select(ScheduleOccurrence)
                .where(ScheduleOccurrence.schedule_id == schedule_id)
                .order_by(ScheduleOccurrence.occurrence_at)
            )
        )


def fired_minutes(sessions: sessionmaker[Session], schedule_id: int) -> list[int]:
    """The UTC minutes of the fired occurrences (each with its campaign), in order."""
    return [
        o.occurrence_at.minute
        for o in occurrences(sessions, schedule_id)
        if o.status == "fired" and o.campaign_id is not None
    ]


def campaigns(sessions: sessionmaker[Session]) -> list[Campaign]:
    """The campaigns named for schedule `tins` (the suite's database holds others' too)."""
    with sessions() as session:
        return list(
            session.scalars(
                select(Campaign).where(Campaign.name.like("tins@%")).order_by(Campaign.id)
            )
        )


# -- one occurrence, on time ------------------------------------------------------------------


def test_an_occurrence_on_time_makes_its_campaign_once(sessions: sessionmaker[Session]) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=5), budget="0.50")
    enqueued: list[list[int]] = []
    done = fire(sessions, T0 + timedelta(seconds=7), enqueued)
    (fired,) = done.fired
    assert fired.campaign == "tins@2027-03-01T09:00:00+01:00"
    (campaign,) = campaigns(sessions)
    assert (campaign.id, campaign.name, campaign.schedule_id) == (
        fired.campaign_id,
        fired.campaign,
        schedule_id,
    )
    assert campaign.budget_usd == Decimal("0.50")
    assert enqueued == [fired.job_ids] and len(fired.job_ids) == 2
    # Another round at the same time, and a later one before the next occurrence: nothing.
    assert fire(sessions, T0 + timedelta(seconds=8)).fired == []
    assert fire(sessions, T0 + timedelta(minutes=9)).fired == []
    assert len(campaigns(sessions)) == 1
    with sessions() as session:
        schedule = session.get_one(Schedule, schedule_id)
        assert schedule.next_due_at == T0 + timedelta(minutes=10)
        assert schedule.last_fired_at == T0
        (only,) = occurrences(sessions, schedule_id)
        assert (only.status, only.reason, only.campaign_id) == ("fired", "due", campaign.id)


def test_each_occurrence_gets_fresh_task_uuids(sessions: sessionmaker[Session]) -> None:
    add(sessions, now=T0 - timedelta(minutes=1))
    fire(sessions, T0 + timedelta(seconds=5))
    fire(sessions, T0 + timedelta(minutes=10, seconds=5))
    first, second = campaigns(sessions)
    with sessions() as session:
        uuids = {
            c.id: sorted(
                str(u)
                for u in session.scalars(select(Job.task_uuid).where(Job.campaign_id == c.id))
            )
            for c in (first, second)
        }
    assert len(uuids[first.id]) == len(uuids[second.id]) == 2
    assert not set(uuids[first.id]) & set(uuids[second.id])
    assert second.name == "tins@2027-03-01T09:10:00+01:00"


def test_a_second_round_that_read_the_schedule_before_the_first_committed_makes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    """A beat restarted mid-fire, or one that read the schedule before another's commit,
    tries the same occurrence again: the unique (schedule, occurrence) makes it a no-op."""
    schedule_id = add(sessions, now=T0 - timedelta(minutes=1))
    fire(sessions, T0 + timedelta(seconds=5))
    with transaction(sessions) as session:
        session.get_one(Schedule, schedule_id).next_due_at = T0  # as the other beat read it
    again = fire(sessions, T0 + timedelta(seconds=6))
    assert again.fired == []
    assert len(campaigns(sessions)) == 1
    assert len(occurrences(sessions, schedule_id)) == 1


# -- the catch-up policies after an outage ----------------------------------------------------

# The schedule was added at 08:55 UTC and no beat ran until 09:45: the occurrences of 09:00,
# 09:10, 09:20 and 09:30 were missed; 09:40 was five minutes ago, missed too (LATE is 2 min).
OUTAGE_END = T0 + timedelta(minutes=45)


def test_catch_up_skip_records_every_missed_occurrence_and_fires_none(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=5), catch_up="skip")
    done = fire(sessions, OUTAGE_END)
    assert done.fired == [] and done.skipped == 5
    rows = occurrences(sessions, schedule_id)
    assert [(o.occurrence_at.minute, o.status) for o in rows] == [
        (0, "skipped"), (10, "skipped"), (20, "skipped"), (30, "skipped"), (40, "skipped"),
    ]  # fmt: skip
    assert all("catch-up skip" in (o.reason or "") for o in rows)
    assert campaigns(sessions) == []
    # The next one, on time, fires.
    fire(sessions, T0 + timedelta(minutes=50, seconds=30))
    assert fired_minutes(sessions, schedule_id) == [50]


def test_catch_up_skip_still_fires_the_occurrence_that_is_on_time(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=5), catch_up="skip")
    fire(sessions, T0 + timedelta(minutes=40, seconds=30))  # 09:40 is 30 s old: on time
    assert fired_minutes(sessions, schedule_id) == [40]
    assert [o.status for o in occurrences(sessions, schedule_id)].count("skipped") == 4


def test_catch_up_latest_fires_the_most_recent_missed_occurrence(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=5), catch_up="latest")
    done = fire(sessions, OUTAGE_END)
    assert [f.campaign for f in done.fired] == ["tins@2027-03-01T09:40:00+01:00"]
    assert fired_minutes(sessions, schedule_id) == [40]
    rows = occurrences(sessions, schedule_id)
    assert [o.status for o in rows] == ["skipped"] * 4 + ["fired"]
    assert "catch-up latest" in (rows[0].reason or "")
    assert "fired late by catch-up latest" in (rows[-1].reason or "")


def test_catch_up_all_fires_every_missed_occurrence_up_to_the_cap(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=5), catch_up="all", cap=3)
    enqueued: list[list[int]] = []
    done = fire(sessions, OUTAGE_END, enqueued)
    assert [f.campaign for f in done.fired] == [
        "tins@2027-03-01T09:20:00+01:00",
        "tins@2027-03-01T09:30:00+01:00",
        "tins@2027-03-01T09:40:00+01:00",
    ]
    assert len(enqueued) == 3  # each occurrence's jobs handed over after its own commit
    rows = occurrences(sessions, schedule_id)
    assert [o.status for o in rows] == ["skipped", "skipped", "fired", "fired", "fired"]
    assert "latest 3 missed occurrences only" in (rows[0].reason or "")
    with sessions() as session:
        assert session.get_one(Schedule, schedule_id).next_due_at == T0 + timedelta(minutes=50)


def test_catch_up_all_under_the_cap_fires_them_all(sessions: sessionmaker[Session]) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=5), catch_up="all", cap=10)
    fire(sessions, OUTAGE_END + timedelta(minutes=5, seconds=10))  # 09:50 on time, too
    assert fired_minutes(sessions, schedule_id) == [0, 10, 20, 30, 40, 50]
    assert len(campaigns(sessions)) == 6


def test_a_long_outage_records_the_latest_missed_occurrences_one_by_one(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, cron="* * * * *", now=T0, catch_up="skip")
    done = fire(sessions, T0 + timedelta(minutes=MAX_RECORDED + 30))
    # The last three (0, 60 and 120 s old) are on time and fire; the missed ones before them
    # are recorded up to MAX_RECORDED occurrences in all.
    assert (len(done.fired), done.skipped) == (3, MAX_RECORDED - 3)
    rows = occurrences(sessions, schedule_id)
    assert len(rows) == MAX_RECORDED
    assert rows[-1].occurrence_at == T0 + timedelta(minutes=MAX_RECORDED + 30)
    assert "so was every occurrence before it" in (rows[0].reason or "")


# -- what an occurrence cannot make -----------------------------------------------------------


def test_an_occurrence_over_its_budget_is_skipped_with_the_reason(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=1), budget="0.10")  # 0.12 asked
    done = fire(sessions, T0 + timedelta(seconds=3))
    (refused,) = done.fired
    assert refused.campaign_id is None and "budget" in refused.reason
    (row,) = occurrences(sessions, schedule_id)
    assert row.status == "skipped" and row.campaign_id is None
    assert (row.reason or "").startswith("not fired: estimated_cost_usd")
    assert campaigns(sessions) == []  # the campaign was rolled back with its jobs


def test_a_campaign_name_in_use_leaves_the_occurrence_skipped(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=1))
    with transaction(sessions) as session:
        session.add(Campaign(name="tins@2027-03-01T09:00:00+01:00"))
    fire(sessions, T0 + timedelta(seconds=3))
    (row,) = occurrences(sessions, schedule_id)
    assert row.status == "skipped" and "another campaign has it" in (row.reason or "")


# -- pause, resume, remove, run now -----------------------------------------------------------


def test_a_paused_schedule_fires_nothing_and_resumes_from_now(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=1))
    with transaction(sessions) as session:
        assert store.pause(session, "tins", now=T0 - timedelta(seconds=30))
        assert not store.pause(session, "tins", now=T0)
    assert fire(sessions, T0 + timedelta(minutes=25)).fired == []
    with transaction(sessions) as session:
        assert store.resume(session, "tins", now=T0 + timedelta(minutes=25))
        assert not store.resume(session, "tins", now=T0 + timedelta(minutes=25))
    # The occurrences of the pause (09:00, 09:10, 09:20) are neither fired nor recorded.
    fire(sessions, T0 + timedelta(minutes=30, seconds=5))
    assert fired_minutes(sessions, schedule_id) == [30]
    assert len(occurrences(sessions, schedule_id)) == 1


def test_remove_drops_the_schedule_and_its_history_and_keeps_its_campaigns(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=1))
    fire(sessions, T0 + timedelta(seconds=3))
    with transaction(sessions) as session:
        assert store.remove(session, "tins") == 1
    with sessions() as session:
        assert session.get(Schedule, schedule_id) is None
        with pytest.raises(store.UnknownSchedule):
            store.find(session, "tins")
    assert occurrences(sessions, schedule_id) == []
    (campaign,) = campaigns(sessions)
    assert campaign.schedule_id is None and campaign.name.startswith("tins@")
    # The name is free again.
    add(sessions, now=T0 + timedelta(minutes=1))


def test_run_now_fires_one_occurrence_besides_the_schedule(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=1))
    with transaction(sessions) as session:
        store.pause(session, "tins", now=T0)
    at = T0 + timedelta(minutes=3, seconds=7, microseconds=5)
    fired = run_now(
        sessions, "tins", rules=RULES, prices=PriceTable.default(), enqueue=None, now=at
    )
    assert fired.campaign == "tins@2027-03-01T09:03:07+01:00"
    with pytest.raises(InvalidInput, match="run it again in a second"):
        run_now(sessions, "tins", rules=RULES, prices=PriceTable.default(), enqueue=None, now=at)
    (row,) = occurrences(sessions, schedule_id)
    assert row.reason == "run now (schedule run)"
    with sessions() as session:  # not enqueued (enqueue None): pending, for the relay
        statuses = session.scalars(select(Job.status).where(Job.campaign_id == fired.campaign_id))
        assert set(statuses) == {"pending"}


def test_run_now_refused_by_the_budget_stores_nothing(sessions: sessionmaker[Session]) -> None:
    schedule_id = add(sessions, now=T0, budget="0.05")
    with pytest.raises(InvalidInput, match="budget"):
        run_now(sessions, "tins", rules=RULES, prices=PriceTable.default(), enqueue=None, now=T0)
    assert occurrences(sessions, schedule_id) == []
    assert campaigns(sessions) == []


# -- adding and changing ----------------------------------------------------------------------


def test_a_definition_is_refused_whole_with_every_error(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidInput) as refused:
        store.check_definition(
            name="has space",
            cron="0 25 * * *",
            timezone="Mars/Olympus",
            source='{"model": "ideogram:4@2", "taskUUID": "not-a-uuid"}\n',
            source_name="tins.jsonl",
            budget_usd="-1",
            catch_up="sometimes",
            catch_up_max=0,
            rules=RULES,
        )
    fields = {e.field for e in refused.value.errors}
    assert {"name", "cron", "timezone", "budget_usd", "catch_up", "catch_up_max"} <= fields
    assert any(e.location == "tins.jsonl: line 1" for e in refused.value.errors)


def test_a_stored_file_must_stand_alone(sessions: sessionmaker[Session]) -> None:
    local = (
        '{"model": "ideogram:4@2", "positivePrompt": "x", "width": 1024, "height": 1024,'
        ' "inputs": {"referenceImages": ["tins/red.png"]}}\n'
    )
    with pytest.raises(InvalidInput, match="local files are not read here"):
        add(sessions, source=local, source_name="tins.jsonl")
    named = local.replace('"tins/red.png"', '"https://a.example/b.jpg"').replace(
        "{", '{"taskUUID": "6ba7b826-9dad-41d1-80b4-00c04fd430c8", ', 1
    )
    with pytest.raises(InvalidInput, match="each occurrence's jobs get new ones"):
        add(sessions, source=named, source_name="tins.jsonl")
    with pytest.raises(InvalidInput, match="its suffix is its format"):
        add(sessions, source=SPEC, source_name="tins.txt")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Schedule)) == 0


def test_a_name_in_use_is_refused(sessions: sessionmaker[Session]) -> None:
    add(sessions)
    with pytest.raises(store.ScheduleNameTaken):
        add(sessions)


def test_an_update_keeps_what_is_not_given_and_retimes_from_now(
    sessions: sessionmaker[Session],
) -> None:
    schedule_id = add(sessions, now=T0 - timedelta(minutes=1))
    jsonl = (
        '{"model": "ideogram:4@2", "positivePrompt": "one", "width": 1024, "height": 1024,'
        ' "inputs": {"referenceImages": ["https://a.example/b.jpg"]}}\n'
    )
    with transaction(sessions) as session:
        store.change(
            session,
            "tins",
            now=T0 + timedelta(minutes=1),
            rules=RULES,
            cron="0 12 * * *",
            source=(jsonl, "one.jsonl"),
            budget_usd="1.00",
        )
    with pytest.raises(InvalidInput, match="cron"), transaction(sessions) as session:
        store.change(session, "tins", now=T0, rules=RULES, cron="nope")
    with sessions() as session:
        schedule = session.get_one(Schedule, schedule_id)
        assert (schedule.cron, schedule.source_name, schedule.catch_up) == (
            "0 12 * * *",
            "one.jsonl",
            "latest",
        )
        assert schedule.next_due_at == datetime(2027, 3, 1, 11, 0, tzinfo=UTC)  # 12:00 CET
    fire(sessions, datetime(2027, 3, 1, 11, 0, 4, tzinfo=UTC))
    (campaign,) = campaigns(sessions)
    assert campaign.budget_usd == Decimal("1.00")
    with sessions() as session:
        assert session.scalar(select(func.count()).where(Job.campaign_id == campaign.id)) == 1


def test_the_history_tells_each_occurrence_and_its_campaign(
    sessions: sessionmaker[Session],
) -> None:
    add(sessions, now=T0 - timedelta(minutes=5), catch_up="latest")
    fire(sessions, T0 + timedelta(minutes=15))
    with sessions() as session:
        view = store.view(session, "tins")
        history = store.history(session, store.find(session, "tins"))
    assert (view.fired, view.skipped, view.next_at) == (1, 1, T0 + timedelta(minutes=20))
    assert view.last is not None and view.last.campaign is not None
    assert view.to_json()["next_occurrence_at"] == "2027-03-01T09:20:00+01:00"
    latest, earlier = (o.to_json() for o in history)
    assert latest["status"] == "fired"
    assert latest["campaign"] == "tins@2027-03-01T09:10:00+01:00"
    assert (latest["campaign_status"], latest["jobs"], latest["cost_usd"]) == ("running", 2, "0.00")
    assert earlier["status"] == "skipped" and earlier["campaign"] is None


# -- two rounds at once, on PostgreSQL --------------------------------------------------------


@pytest.fixture
def committed_pg() -> Iterator[Engine]:
    url = scratch_pg_url("schedules")
    recreate_pg_database(url)
    from remixq import migrate

    migrate.upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_rounds_racing_on_postgresql_fire_each_occurrence_once(committed_pg: Engine) -> None:
    sessions = make_sessionmaker(committed_pg)
    add(sessions, now=T0 - timedelta(minutes=5), catch_up="all", cap=10)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def round_() -> None:
        try:
            start.wait()
            fire(sessions, OUTAGE_END)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=round_) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    names = [c.name for c in campaigns(sessions)]
    assert len(names) == len(set(names)) == 5  # 09:00 to 09:40, each once
