"""The receiver's per-process state: its settings, its engine (with the connection settings the
ingestion statement needs), its group-commit writer and its webhook secret, made on first use
(after gunicorn's fork) and kept in the Flask app's extensions."""

from __future__ import annotations

import logging
from functools import cached_property

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from remixq.config import Settings
from remixq.db import make_engine
from remixq.ingest.postgres import PLANNER_OPTIONS
from webhook_receiver.group_commit import GroupCommit

log = logging.getLogger(__name__)


class ReceiverState:
    """Engine and secret of one receiver process; made on first use (after gunicorn's fork)."""

    def __init__(self, settings: Settings):
        self.settings = settings

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


def state(app: Flask) -> ReceiverState:
    return app.extensions["remixq"]


def init_app(app: Flask, settings: Settings) -> ReceiverState:
    """Attach a receiver state made from `settings` to `app`."""
    receiver = app.extensions["remixq"] = ReceiverState(settings)
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
