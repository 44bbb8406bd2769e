"""The REST API's errors: `{"error": {"code", "message", ...}}` with a stable code, for every
failure under /api/ (routing's 404 and 405 included), never an HTML page or a traceback. The
webhook routes keep their own documents (webhook_receiver.errors)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from remixq.budgets import BudgetConflict, BudgetExceeded
from remixq.errors import InvalidInput, UnknownCampaign

log = logging.getLogger("remixq.api")

PREFIX = "/api/"
# Werkzeug's errors, by status, as the API names them.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}


class ApiError(Exception):
    """An answer other than success: its status, stable code, message and any detail."""

    def __init__(self, status: int, code: str, message: str, **detail: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail


def error_response(status: int, code: str, message: str, **detail: Any) -> Response:
    body = {"error": {"code": code, "message": message, **detail}}
    response = jsonify(body)
    response.status_code = status
    return response


def http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = HTTP_CODES.get(status, (exc.name or "error").lower().replace(" ", "_"))
    response = error_response(status, code, exc.description or exc.name or "error")
    if status == 405 and exc.response is None:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="remixq"'
    return response


def register(bp: Blueprint) -> None:
    """The handlers of errors raised in the API's views (the blueprint's, registered once with
    it); routing's 404 and 405 under /api/ go through `http_error`, which the app's calls."""

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        response = error_response(exc.status, exc.code, exc.message, **exc.detail)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="remixq"'
        return response

    @bp.errorhandler(UnknownCampaign)
    def unknown_campaign(exc: UnknownCampaign) -> Response:
        return error_response(404, "not_found", f"no campaign has id {exc.campaign_id}")

    @bp.errorhandler(BudgetExceeded)
    def budget_exceeded(exc: BudgetExceeded) -> Response:
        return error_response(
            409,
            exc.code,
            str(exc),
            errors=[e.as_dict() for e in exc.errors],
            **exc.detail(),
        )

    @bp.errorhandler(BudgetConflict)
    def budget_conflict(exc: BudgetConflict) -> Response:
        explained = exc.explained(f"PATCH /api/v1/campaigns/{exc.state.campaign_id}")
        return error_response(
            409,
            exc.code,
            str(explained),
            errors=[e.as_dict() for e in explained.errors],
            **exc.detail(),
        )

    @bp.errorhandler(InvalidInput)
    def invalid_input(exc: InvalidInput) -> Response:
        return error_response(
            422, "invalid_input", str(exc), errors=[e.as_dict() for e in exc.errors]
        )

    bp.register_error_handler(HTTPException, http_error)

    def unavailable(exc: Exception) -> Response:
        log.warning("api: database unavailable: %s", type(exc).__name__)
        response = error_response(503, "database_unavailable", "storage is unavailable; retry")
        response.headers["Retry-After"] = "5"
        return response

    for kind in (OperationalError, PoolTimeout):
        bp.register_error_handler(kind, unavailable)

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.error("api: unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "unexpected error")
