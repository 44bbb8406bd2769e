"""The receiver's per-process state: its settings, its engine (with the connection settings the
ingestion statement needs), its group-commit writer and its webhook secret, the REST API's
own engine and broker publisher, the readiness checks and the metrics page, made on first use
(after gunicorn's fork) and kept in the Flask app's extensions."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from flask import Flask
from kombu import Connection
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from remixq.assets.storage import Storage, open_storage
from remixq.config import Settings
from remixq.db import make_engine, make_sessionmaker
from remixq.ingest import Limits
from remixq.ingest.postgres import PLANNER_OPTIONS
from remixq.pricing import PriceTable
from webhook_receiver.group_commit import GroupCommit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Publisher:
    """What the API needs of the worker's side, which the receiver may not import: the enqueue
    step of remixq.submission, and the lift of every worker's shared pause (after a resume of a
    campaign the account's refusal paused)."""

    enqueue: Callable[[sessionmaker[Session], Sequence[int]], None]
    lift_shared_pause: Callable[[], None]


# Makes the Publisher from the settings (the composition root, the CLI, passes the worker's).
# Called on first use, so that Celery is imported by an API request, never on the webhook path.
PublisherFactory = Callable[[Settings], Publisher]


class ReceiverState:
    """Engine and secret of one receiver process; made on first use (after gunicorn's fork)."""

    def __init__(self, settings: Settings, publisher: PublisherFactory | None = None):
        self.settings = settings
        self._publisher = publisher

    @cached_property
    def engine(self) -> Engine:
        # No pre-ping: it would cost a round trip per webhook. A connection lost since its last
        # use fails its request with 503 (the provider retries) and is replaced.
        if self.settings.database.startswith("sqlite"):
            return make_engine(self.settings.database, pool_pre_ping=False)
        return make_engine(
            self.settings.database,
            pool_pre_ping=False,
            pool_size=2,  # the writer's, and a health check's
            max_overflow=4,
            connect_args={"options": PLANNER_OPTIONS},
        )

    @cached_property
    def writer(self) -> GroupCommit:
        return GroupCommit(
            self.engine,
            max_queued=self.settings.receiver_queue_max,
            limits=Limits.of(self.settings),
        )

    @cached_property
    def secret(self) -> bytes:
        return self.settings.secret()

    @cached_property
    def dashboard_secret(self) -> bytes:
        """The key of the dashboard's session cookies and CSRF tokens (made on first use)."""
        return self.settings.dashboard_secret_key()

    @cached_property
    def api_engine(self) -> Engine:
        """The REST API's and the dashboard's engine (and the metrics' database gauges'), a pool
        of its own: a slow listing never holds a connection that the webhook writer or a health
        check needs."""
        if self.settings.database.startswith("sqlite"):
            return make_engine(self.settings.database)
        # No JIT: the reports' aggregates over a large campaign are estimated dear enough to be
        # compiled, which then costs seconds more than running them (docs/benchmarks.md).
        return make_engine(
            self.settings.database,
            pool_size=2,
            max_overflow=4,
            pool_timeout=10,
            connect_args={"options": "-c jit=off"},
        )

    @cached_property
    def api_sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.api_engine)

    @cached_property
    def storage(self) -> Storage:
        """Where the image assets are (REMIXQ_STORAGE_URL), for the API's content route."""
        return open_storage(self.settings)

    @cached_property
    def prices(self) -> PriceTable:
        """The price table the API's estimates use (REMIXQ_PRICE_TABLE), read once."""
        return PriceTable.configured(self.settings)

    @cached_property
    def publisher(self) -> Publisher | None:
        """The API's publisher; None without one (the relay hands the jobs over)."""
        return self._publisher(self.settings) if self._publisher else None

    @property
    def enqueue(self) -> Callable[[sessionmaker[Session], Sequence[int]], None] | None:
        return self.publisher.enqueue if self.publisher else None

    @cached_property
    def readiness(self) -> Readiness:
        return Readiness(lambda: self.engine, self.settings.broker)

    @cached_property
    def _registries(self) -> tuple[CollectorRegistry, CollectorRegistry]:
        """This process's metrics (every gunicorn worker's, in multiprocess mode) and the
        database's gauges, made on first scrape (after gunicorn's fork): the webhook path never
        pays for them."""
        from prometheus_client.multiprocess import MultiProcessCollector

        from remixq.metrics import DatabaseCollector

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            processes = CollectorRegistry()
            MultiProcessCollector(processes)
        else:  # an app served by another WSGI server, in one process
            processes = REGISTRY
        database = CollectorRegistry()
        database.register(DatabaseCollector(lambda: self.api_engine))
        return processes, database

    def metrics_page(self) -> tuple[bytes, str]:
        """The body and content type of `/metrics`."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        processes, database = self._registries
        return generate_latest(processes) + generate_latest(database), CONTENT_TYPE_LATEST


class Readiness:
    """Whether the database and the broker answer, each asked at most once per `ttl` seconds
    (a probe's answer is remembered): "ok", or what went wrong (an error's class name)."""

    def __init__(self, engine: Callable[[], Engine], broker_url: str, *, ttl: float = 1.0):
        self._engine, self._broker_url, self._ttl = engine, broker_url, ttl
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[float, str]] = {}

    def database(self) -> str:
        return self._cached("database", self._ask_database)

    def broker(self) -> str:
        return self._cached("broker", self._ask_broker)

    def _cached(self, name: str, ask: Callable[[], None]) -> str:
        now = time.monotonic()
        with self._lock:
            found = self._answers.get(name)
            if found is not None and now - found[0] < self._ttl:
                return found[1]
        try:
            ask()
            answer = "ok"
        except Exception as exc:  # noqa: BLE001 (any failure is an answer: unready)
            answer = type(exc).__name__
        with self._lock:
            self._answers[name] = (time.monotonic(), answer)
        return answer

    def _ask_database(self) -> None:
        with self._engine().connect() as connection:
            connection.execute(text("SELECT 1"))

    def _ask_broker(self) -> None:
        with Connection(self._broker_url, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1, timeout=2)


def state(app: Flask) -> ReceiverState:
    return app.extensions["remixq"]


def init_app(
    app: Flask, settings: Settings, publisher: PublisherFactory | None = None
) -> ReceiverState:
    """Attach a receiver state made from `settings` to `app`."""
    receiver = app.extensions["remixq"] = ReceiverState(settings, publisher)
    return receiver


def warm_up(app: object) -> None:
    """Make now, in a freshly started worker, what its first webhook would otherwise make: the
    engine (which imports the database driver) and a first connection, which the writer then
    takes from the pool. The first webhooks do not pay for it, and what it made is in the heap
    the worker then freezes (webhook_receiver.server). A database that is down now only
    postpones this to the first webhook."""
    receiver = getattr(app, "extensions", {}).get("remixq")  # any other WSGI app: nothing
    if not isinstance(receiver, ReceiverState):
        return
    try:
        with receiver.engine.connect():
            pass
    except SQLAlchemyError as exc:
        log.warning("the database is not reachable yet (%s); the first webhook connects", exc)
