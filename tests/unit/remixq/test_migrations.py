"""Migrations: upgrade → downgrade → upgrade round-trips, and no drift from the models."""

from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from remixq import migrate
from remixq.states import InboxStatus
from tests.support.databases import recreate_pg_database, scratch_pg_url

TABLES = {"campaigns", "jobs", "images", "webhook_events", "alembic_version"}
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
    url = scratch_pg_url("migrations")
    recreate_pg_database(url)
    _round_trip(url)


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
    if backend == "postgresql":
        url = scratch_pg_url("migrations")
        recreate_pg_database(url)
    else:
        url = f"sqlite:///{tmp_path / 'inbox.sqlite'}"
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
