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
        # Generic plans: ingestion's statement is prepared by psycopg, but PostgreSQL would
        # still plan it again at every execution (measured: 0.9 ms, more than running it).
        return make_engine(
            self.settings.database,
            pool_pre_ping=False,
            pool_size=2,  # the writer's, and a health check's
            max_overflow=4,
            connect_args={"options": "-c plan_cache_mode=force_generic_plan"},
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

    from webhook_receiver.webhooks import bp as webhooks

    app.register_blueprint(webhooks)
    _register_error_handlers(app)
    return app


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        body = {
            "error": (exc.name or "error").lower().replace(" ", "_"),
            "message": exc.description,
        }
        return jsonify(body), exc.code or 500

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    @app.errorhandler(WriterBusy)
    def database_unavailable(exc: Exception) -> ResponseReturnValue:
        # Nothing was committed; a 503 makes the provider deliver the webhook again later.
        app.logger.warning("database unavailable: %s", type(exc).__name__)
        response = jsonify(
            {"error": "database_unavailable", "message": "storage is unavailable; retry later"}
        )
        response.headers["Retry-After"] = "5"
        return response, 503

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        app.logger.exception("unhandled error")
        return jsonify({"error": "internal_error", "message": "unexpected error"}), 500
