"""Migrations: upgrade → downgrade → upgrade round-trips, and no drift from the models."""

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from remixq import migrate
from remixq.states import InboxStatus
from tests.support.databases import empty_database

TABLES = {
    "campaigns", "jobs", "images", "webhook_events", "api_keys", "idempotency_keys",
    "schedules", "schedule_occurrences", "alembic_version",
}  # fmt: skip
INBOX_REVISION_BEFORE = "eaff8d262289"  # the revision before the inbox statuses were narrowed


def _round_trip(url: str) -> None:
    migrate.upgrade(url)
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == TABLES
    migrate.check(url)  # raises if models and migrations disagree
    migrate.downgrade(url, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    migrate.upgrade(url)
    assert set(inspect(engine).get_table_names()) == TABLES
    engine.dispose()


def test_round_trip_on_postgresql() -> None:
    _round_trip(empty_database("postgresql", Path(), "migrations"))


def test_round_trip_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'm.sqlite'}")


def _inbox_row_with(connection: Connection, status: str) -> None:
    connection.execute(
        text(
            "INSERT INTO webhook_events (received_at, source, status, body)"
            " VALUES (CURRENT_TIMESTAMP, 'webhook', :status, :body)"
        ),
        {"status": status, "body": b"{}"},
    )


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_inbox_statuses_are_the_state_machines(backend: str, tmp_path: Path) -> None:
    """The inbox CHECK allows exactly `InboxStatus`; the revision that dropped "received" turns a
    leftover row into an orphan (replayed by default) and its downgrade allows it again."""
    url = empty_database(backend, tmp_path, "migrations")
    engine = create_engine(url)
    migrate.upgrade(url, INBOX_REVISION_BEFORE)
    with engine.begin() as connection:
        _inbox_row_with(connection, "received")
    migrate.upgrade(url)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT status FROM webhook_events")).scalar() == "orphan"
        for status in InboxStatus:
            _inbox_row_with(connection, status.value)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        _inbox_row_with(connection, "received")
    migrate.downgrade(url, INBOX_REVISION_BEFORE)
    with engine.begin() as connection:
        _inbox_row_with(connection, "received")
    engine.dispose()


TASK_UUID_REVISION_BEFORE = "a7c3f19e2b64"  # the revision before the inbox's taskUUID was a UUID


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_inbox_task_uuid_becomes_a_uuid_and_junk_becomes_null(
    backend: str, tmp_path: Path
) -> None:
    """Stored text that is a UUID (any case) becomes the job column's value; text that is not
    becomes NULL with the row and its body kept; the downgrade gives text back."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from remixq.models import WebhookEvent

    url = empty_database(backend, tmp_path, "migrations")
    engine = create_engine(url)
    task = "5B1E0A7D-9B42-4C1E-8A7D-9B425C1E0A7D"
    migrate.upgrade(url, TASK_UUID_REVISION_BEFORE)
    with engine.begin() as connection:
        for value in (task, "not-a-uuid"):
            connection.execute(
                text(
                    "INSERT INTO webhook_events (received_at, source, task_uuid, status, body)"
                    " VALUES (CURRENT_TIMESTAMP, 'webhook', :task, 'orphan', :body)"
                ),
                {"task": value, "body": value.encode()},
            )
    migrate.upgrade(url)
    with Session(engine) as session:
        rows = session.execute(
            select(WebhookEvent.task_uuid, WebhookEvent.body).order_by(WebhookEvent.id)
        ).all()
        assert [tuple(r) for r in rows] == [
            (task.lower(), task.encode()),
            (None, b"not-a-uuid"),
        ]
        found = session.scalars(
            select(WebhookEvent.id).where(WebhookEvent.task_uuid == task.lower())
        ).all()
        assert len(found) == 1
    migrate.downgrade(url, TASK_UUID_REVISION_BEFORE)
    with engine.begin() as connection:
        texts = (
            connection.execute(text("SELECT task_uuid FROM webhook_events ORDER BY id"))
            .scalars()
            .all()
        )
        assert texts == [task.lower(), None]
    engine.dispose()


CONTROL_REVISION_BEFORE = "7b2f4c9e1d03"  # the revision before campaign control


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_campaign_control_revision_keeps_every_pause_the_accounts(
    backend: str, tmp_path: Path
) -> None:
    """A pause stored before `paused_by` existed was the account's (the probe may lift it); the
    jobs' CHECK takes `cancelled`, and the downgrade turns a cancelled job into a failed one."""
    url = empty_database(backend, tmp_path, "migrations")
    engine = create_engine(url)
    job = (
        "INSERT INTO jobs (campaign_id, task_uuid, provider, model, request, number_results,"
        " results_received, status, attempts, created_at, updated_at, checks) VALUES (1, :task,"
        " 'runware', 'm', '{}', 1, 0, :status, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)"
    )
    migrate.upgrade(url, CONTROL_REVISION_BEFORE)
    with engine.begin() as connection:  # rows referring to the tables the revision alters
        connection.execute(
            text(
                "INSERT INTO campaigns (name, created_at, paused_at, pause_reason)"
                " VALUES ('c', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '402')"
            )
        )
        connection.execute(text(job), {"task": str(uuid.uuid4()), "status": "completed"})
        connection.execute(
            text(
                "INSERT INTO images (job_id, image_uuid, raw, created_at)"
                " VALUES (1, :image, '{}', CURRENT_TIMESTAMP)"
            ),
            {"image": str(uuid.uuid4())},
        )
    migrate.upgrade(url)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT paused_by FROM campaigns")).scalar() == "account"
        connection.execute(text(job), {"task": str(uuid.uuid4()), "status": "cancelled"})
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(job), {"task": str(uuid.uuid4()), "status": "lost"})
    migrate.downgrade(url, CONTROL_REVISION_BEFORE)
    with engine.begin() as connection:
        rows = connection.execute(text("SELECT status, error_code FROM jobs ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [("completed", None), ("failed", "cancelled")]
        assert connection.execute(text("SELECT count(*) FROM images")).scalar() == 1
    engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_jobs_indexes_serve_their_lookups_with_fewer_entries(backend: str, tmp_path: Path) -> None:
    """`jobs` keeps no index repeated by another's first column, and its retries' index holds
    the retries alone: a job's retry (`retry_of_id = :id`) and a campaign's jobs are still
    looked up by index on both databases."""
    url = empty_database(backend, tmp_path, "migrations")
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        names = {index["name"] for index in inspect(engine).get_indexes("jobs")}
        assert "ix_jobs_campaign_id" not in names
        assert {"ix_jobs_campaign_id_id", "ix_jobs_retry_of_id"} <= names
        lookups = {
            "ix_jobs_retry_of_id": "SELECT task_uuid FROM jobs WHERE retry_of_id = 7",
            "ix_jobs_campaign_id_": "SELECT id FROM jobs WHERE campaign_id = 3",
        }
        with engine.connect() as connection:
            if backend == "postgresql":
                connection.execute(text("SET enable_seqscan = off"))  # an empty table
                explain = "EXPLAIN "
            else:
                explain = "EXPLAIN QUERY PLAN "
            for index, query in lookups.items():
                plan = " ".join(str(row) for row in connection.execute(text(explain + query)))
                assert index in plan, (query, plan)
            if backend == "postgresql":
                definition = connection.scalar(
                    text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_jobs_retry_of_id'")
                )
                assert definition.endswith("WHERE (retry_of_id IS NOT NULL)")
    finally:
        engine.dispose()
    migrate.downgrade(url, "e5a9c3f1b7d2")
    engine = create_engine(url)
    try:
        assert "ix_jobs_campaign_id" in {i["name"] for i in inspect(engine).get_indexes("jobs")}
    finally:
        engine.dispose()
