"""The receiver's per-process state: its settings, its engine (with the connection settings the
ingestion statement needs), its group-commit writer and its webhook secret, and the REST API's
own engine and broker publisher, made on first use (after gunicorn's fork) and kept in the Flask
app's extensions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from remixq.config import Settings
from remixq.db import make_engine, make_sessionmaker
from remixq.ingest.postgres import PLANNER_OPTIONS
from webhook_receiver.group_commit import GroupCommit

# Makes the enqueue step of remixq.submission from the settings (the composition root passes
# the worker's producer; the receiver cannot import the worker). Called on first use, so that
# Celery is imported by an API request, never on the webhook path.
EnqueuerFactory = Callable[[Settings], Callable[[sessionmaker[Session], Sequence[int]], None]]


class ReceiverState:
    """Engine and secret of one receiver process; made on first use (after gunicorn's fork)."""

    def __init__(self, settings: Settings, enqueuer: EnqueuerFactory | None = None):
        self.settings = settings
        self._enqueuer = enqueuer

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
        return GroupCommit(self.engine, max_queued=self.settings.receiver_queue_max)

    @cached_property
    def secret(self) -> bytes:
        return self.settings.secret()

    @cached_property
    def api_sessions(self) -> sessionmaker[Session]:
        """The REST API's sessions, on a pool of its own: a slow listing never holds a
        connection that the webhook writer or a health check needs."""
        if self.settings.database.startswith("sqlite"):
            return make_sessionmaker(make_engine(self.settings.database))
        return make_sessionmaker(
            make_engine(self.settings.database, pool_size=2, max_overflow=4, pool_timeout=10)
        )

    @cached_property
    def enqueue(self) -> Callable[[sessionmaker[Session], Sequence[int]], None] | None:
        """The API's enqueue step; None without a publisher (the relay hands the jobs over)."""
        return self._enqueuer(self.settings) if self._enqueuer else None


def state(app: Flask) -> ReceiverState:
    return app.extensions["remixq"]


def init_app(
    app: Flask, settings: Settings, enqueuer: EnqueuerFactory | None = None
) -> ReceiverState:
    """Attach a receiver state made from `settings` to `app`."""
    receiver = app.extensions["remixq"] = ReceiverState(settings, enqueuer)
    return receiver
