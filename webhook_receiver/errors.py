"""The receiver's error documents and the handlers that answer with them: JSON, never a
traceback, for Flask's routes and the fast path alike (webhook_receiver.webhooks)."""

from __future__ import annotations

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from webhook_receiver.group_commit import WriterBusy

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


def register_error_handlers(app: Flask) -> None:
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
        app.logger.error("unhandled error", exc_info=exc)
        return jsonify(INTERNAL_ERROR_BODY), 500
