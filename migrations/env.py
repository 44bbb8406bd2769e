"""Alembic environment: the URL comes from remixq's settings (or the caller), never from a file."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from remixq import models  # noqa: F401  (registers the tables on Base.metadata)
from remixq.config import load_settings
from remixq.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return (
        config.attributes.get("url")
        or config.get_main_option("sqlalchemy.url")
        or (load_settings().database)
    )


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    """Run the migrations on `connection`. On SQLite, foreign keys are off meanwhile: a batch
    alter copies a table, drops it and renames the copy, and dropping a table other rows refer
    to (jobs, campaigns) would fail with them on. They are checked once the schema is done."""
    _configure(connection)
    sqlite = connection.dialect.name == "sqlite" and not connection.in_transaction()
    driver: Any = connection.connection.driver_connection if sqlite else None
    if sqlite:
        driver.execute("PRAGMA foreign_keys=OFF")  # outside a transaction, or it is ignored
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if sqlite:
            driver.execute("PRAGMA foreign_keys=ON")
    if sqlite:
        broken = driver.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration left rows with dangling references: {broken[:5]}")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
