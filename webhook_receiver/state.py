"""The receiver's per-process state: its settings, its engine (with the connection settings the
ingestion statement needs), its group-commit writer and its webhook secret, made on first use
(after gunicorn's fork) and kept in the Flask app's extensions."""

from __future__ import annotations

from functools import cached_property

from flask import Flask
from sqlalchemy import Engine

from remixq.config import Settings
from remixq.db import make_engine
from remixq.ingest import Limits
from remixq.ingest.postgres import PLANNER_OPTIONS
from webhook_receiver.group_commit import GroupCommit


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
        return GroupCommit(
            self.engine,
            max_queued=self.settings.receiver_queue_max,
            limits=Limits.of(self.settings),
        )

    @cached_property
    def secret(self) -> bytes:
        return self.settings.secret()


def state(app: Flask) -> ReceiverState:
    return app.extensions["remixq"]


def init_app(app: Flask, settings: Settings) -> ReceiverState:
    """Attach a receiver state made from `settings` to `app`."""
    receiver = app.extensions["remixq"] = ReceiverState(settings)
    return receiver
