"""Shared fixtures: real PostgreSQL (and SQLite, the embedded default), migrated once per run;
a savepoint-rolled-back session per test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from remixq import migrate
from remixq.db import make_engine
from tests.support.databases import PG_URL, recreate_pg_database


@pytest.fixture(scope="session")
def pg_url() -> str:
    recreate_pg_database(PG_URL)
    migrate.upgrade(PG_URL)
    return PG_URL


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'remixq.sqlite'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Both backends: PostgreSQL in production, SQLite as the embedded default."""
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


@contextmanager
def _rolled_back(engine: Engine) -> Iterator[Session]:
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside one transaction rolled back at the end."""
    with _rolled_back(engine) as rolled_back:
        yield rolled_back


@pytest.fixture
def pg_session(pg_url: str) -> Iterator[Session]:
    """The same on PostgreSQL only, for what only PostgreSQL does (plans, row-lock order)."""
    engine = make_engine(pg_url)
    try:
        with _rolled_back(engine) as rolled_back:
            yield rolled_back
    finally:
        engine.dispose()


@pytest.fixture
def root_restored() -> Iterator[None]:
    """For a test whose code configures the process's root logger, as a server's entry point
    does (gunicorn's logger class, the simulator's command): the test process gets its handlers
    and level back, so that no later test sees them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


POISON_URL = "http://poison.invalid/x.jpg"


@pytest.fixture
def poison(engine: Engine) -> Iterator[str]:
    """A trigger that refuses one image URL: a statement that fails in the database although
    its body validated (a constraint, a full disk, a bug), to see what a failed batch leaves."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text(
                    "CREATE OR REPLACE FUNCTION remixq_test_poison() RETURNS trigger AS $$"
                    f" BEGIN IF NEW.image_url = '{POISON_URL}' THEN"
                    " RAISE EXCEPTION 'poisoned image'; END IF; RETURN NEW; END $$"
                    " LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER remixq_test_poison BEFORE INSERT ON images"
                    " FOR EACH ROW EXECUTE FUNCTION remixq_test_poison()"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE TRIGGER remixq_test_poison BEFORE INSERT ON images"
                    f" WHEN NEW.image_url = '{POISON_URL}'"
                    " BEGIN SELECT RAISE(ABORT, 'poisoned image'); END"
                )
            )
    yield POISON_URL
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP TRIGGER remixq_test_poison ON images"))
            connection.execute(text("DROP FUNCTION remixq_test_poison()"))
        else:
            connection.execute(text("DROP TRIGGER remixq_test_poison"))
