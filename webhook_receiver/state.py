"""The receiver's per-process state: its settings, its engine (with the connection settings the
ingestion statement needs), its group-commit writer and its webhook secret, made on first use
(after gunicorn's fork) and kept in the Flask app's extensions."""

from __future__ import annotations

from functools import cached_property

from flask import Flask
from sqlalchemy import Engine

from remixq.config import Settings
from remixq.db import make_engine
from webhook_receiver.group_commit import GroupCommit

# How the receiver's connections plan the ingestion statement (remixq.ingest), which psycopg
# prepares: a generic plan, made once (PostgreSQL would otherwise plan it again at every
# execution: measured 0.9 ms, more than running it), and one of nested loops. A batch holds at
# most 64 webhooks, but the planner takes each set-returning function for 100 rows and builds a
# hash table for each of the statement's seven joins, which cost more than the joins: measured
# over 2,400 webhooks, PostgreSQL's CPU per webhook went from 0.47 to 0.35 ms for batches of one
# and from 0.16-0.25 to 0.14 ms for batches of four.
_PLANNER_OPTIONS = " ".join(
    f"-c {setting}"
    for setting in (
        "plan_cache_mode=force_generic_plan",
        "enable_hashjoin=off",
        "enable_hashagg=off",
        "enable_mergejoin=off",
    )
)


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
            connect_args={"options": _PLANNER_OPTIONS},
        )

    @cached_property
    def writer(self) -> GroupCommit:
        return GroupCommit(self.engine)

    @cached_property
    def secret(self) -> bytes:
        return self.settings.secret()


def state(app: Flask) -> ReceiverState:
    return app.extensions["remixq"]


def init_app(app: Flask, settings: Settings) -> ReceiverState:
    """Attach a receiver state made from `settings` to `app`."""
    receiver = app.extensions["remixq"] = ReceiverState(settings)
    return receiver
