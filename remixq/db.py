"""SQLAlchemy foundations: the declarative base, engines and sessions, made per process.

Nothing here runs at import time: `make_engine` is called by each process (after fork, for
prefork servers), sessions are opened per request or per task, and commits belong to the edge.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Engine, MetaData, Numeric, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator, TypeEngine

from remixq.config import Settings
from remixq.files import private_sqlite

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every backend (SQLite keeps no zone: we store UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 (SQLAlchemy's signature)
    ) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


MONEY_SCALE = 10  # Runware prices are fractions of a cent (e.g. 0.0013 USD)
_MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


class Money(TypeDecorator[Decimal]):
    """USD amounts, exact on every backend: NUMERIC on PostgreSQL; on SQLite, which has no
    decimal type, an integer count of 1e-10 USD so that stored values and SUM() stay exact."""

    impl = Numeric(18, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, MONEY_SCALE))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = Decimal(value).quantize(_MONEY_QUANTUM)
        return int(exact.scaleb(MONEY_SCALE)) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-MONEY_SCALE)
        return Decimal(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the receiver read while a worker writes; busy_timeout waits instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def json_dumps(value: Any) -> str:
    """Compact JSON with exact decimals: the JSON columns, the inbox's poll bodies, the
    ingestion statement's parameter and the provider client's requests. Provider payloads are
    read with exact decimals (remixq.providers.runware.results.parse_json), and a decimal is
    written back as the number it is, digit for digit (a float would round a cost such as
    0.1234567890123456789). NaN and Infinity are refused: JSON has no such numbers.

    The standard encoder writes only floats as numbers, so a decimal is first written as a
    string carrying a per-process random mark, which is then replaced by the bare number;
    a string of the value itself cannot hold the mark (it would need to guess it)."""
    text = json.dumps(value, default=_marked_decimal, separators=(",", ":"), allow_nan=False)
    if _ESCAPED_MARK not in text:
        return text
    return _MARKED_NUMBER.sub(r"\1", text)


def json_loads(text: str | bytes) -> Any:
    """JSON with exact decimals and without NaN or Infinity: the JSON columns (the engines'
    deserializer) and provider payloads (remixq.providers.runware.results.parse_json)."""
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


_DECIMAL_MARK = f"\x00decimal-{secrets.token_hex(16)}:"
_ESCAPED_MARK = json.dumps(_DECIMAL_MARK)[1:-1]  # as the encoder writes it inside a string
_MARKED_NUMBER = re.compile('"' + re.escape(_ESCAPED_MARK) + '([-+.0-9Ee]+)"')


def _marked_decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a number JSON allows")
        return _DECIMAL_MARK + str(value)  # str() of a finite Decimal is a JSON number
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _begin_immediate(connection: Any) -> None:
    # A deferred SQLite transaction that reads and then writes fails (SQLITE_BUSY_SNAPSHOT)
    # when another process wrote in between, and busy_timeout does not help; taking the write
    # lock at BEGIN makes writers queue instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself


def make_engine(url: str, **kwargs: Any) -> Engine:
    """One engine per process; SQLite gets the pragmas that make it safe for several writers."""
    kwargs.setdefault("json_serializer", json_dumps)
    kwargs.setdefault("json_deserializer", json_loads)
    if url.startswith("sqlite"):
        private_sqlite(url)  # it holds every job and webhook: owner-only (remixq.files)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_no_implicit_begin)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def database(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the configured database, for one command or one producer's run.

    The embedded default needs no set-up step: its SQLite schema is brought to head first.
    """
    if settings.database_url is None:
        from remixq import migrate  # Alembic only where the schema may need it

        settings.ensure_data_dir()
        migrate.upgrade(settings.database)
    engine = make_engine(settings.database)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()
