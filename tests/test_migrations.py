"""Migrations: upgrade → downgrade → upgrade round-trips, and no drift from the models."""

from pathlib import Path

from sqlalchemy import create_engine, inspect

from remixq import migrate
from tests.support.databases import recreate_pg_database, scratch_pg_url

TABLES = {"campaigns", "jobs", "images", "webhook_events", "alembic_version"}


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
