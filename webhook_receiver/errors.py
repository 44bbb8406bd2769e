"""The receiver's error documents and the handlers that answer with them: JSON, never a
traceback, for Flask's routes and the fast path alike (webhook_receiver.webhooks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Flask, jsonify, request
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


def register_error_handlers(
    app: Flask,
    *,
    http_errors_under: Mapping[str, Callable[[HTTPException], ResponseReturnValue]] | None = None,
) -> None:
    """`http_errors_under` answers the HTTP errors (routing's 404 and 405 included) of the paths
    under a prefix in a document of its own (the REST API's under /api/)."""
    prefixes = dict(http_errors_under or {})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        for prefix, handler in prefixes.items():
            if request.path.startswith(prefix):
                return handler(exc)
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
