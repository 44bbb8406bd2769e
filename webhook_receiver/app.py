"""The webhook receiver: a Flask app factory and its per-process state."""

from __future__ import annotations

from functools import cached_property

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from remixq.config import Settings, load_settings
from remixq.db import make_engine
from webhook_receiver.group_commit import GroupCommit, WriterBusy

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

# Errors that mean the database could not be reached in time: nothing was committed, and the
# answer is a 503, which makes the provider deliver the webhook again later.
UNAVAILABLE = (OperationalError, PoolTimeout, WriterBusy)
UNAVAILABLE_BODY = {
    "error": "database_unavailable",
    "message": "storage is unavailable; retry later",
}
RETRY_AFTER = "5"  # seconds
INTERNAL_ERROR_BODY = {"error": "internal_error", "message": "unexpected error"}


def http_error_body(exc: HTTPException) -> dict[str, str | None]:
    return {"error": (exc.name or "error").lower().replace(" ", "_"), "message": exc.description}


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


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask("remixq.webhook_receiver")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_webhook_bytes
    app.extensions["remixq"] = ReceiverState(settings)

    from webhook_receiver.webhooks import FastPath
    from webhook_receiver.webhooks import bp as webhooks

    app.register_blueprint(webhooks)
    _register_error_handlers(app)
    app.wsgi_app = FastPath(app)  # type: ignore[method-assign]
    return app


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        return jsonify(http_error_body(exc)), exc.code or 500

    def database_unavailable(exc: Exception) -> ResponseReturnValue:
        app.logger.warning("database unavailable: %s", type(exc).__name__)
        response = jsonify(UNAVAILABLE_BODY)
        response.headers["Retry-After"] = RETRY_AFTER
        return response, 503

    for unavailable in UNAVAILABLE:
        app.register_error_handler(unavailable, database_unavailable)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        app.logger.exception("unhandled error")
        return jsonify(INTERNAL_ERROR_BODY), 500
