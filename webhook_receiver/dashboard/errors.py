"""The dashboard's errors as pages (its JSON endpoint's as JSON): never a traceback."""

from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from remixq.errors import InvalidInput, UnknownCampaign
from webhook_receiver.dashboard.auth import JSON_ENDPOINTS, CsrfRefused
from webhook_receiver.dashboard.blueprint import bp

log = logging.getLogger("remixq.dashboard")


def page(status: int, title: str, message: str) -> ResponseReturnValue:
    if request.endpoint in JSON_ENDPOINTS:
        code = title.lower().replace(" ", "_")
        return jsonify({"error": {"code": code, "message": message}}), status
    return render_template("dashboard/error.html", title=title, message=message), status


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    if status == 413:
        return page(413, "Too large", "That upload is larger than the dashboard accepts.")
    return page(status, exc.name or "Error", exc.description or "")


@bp.errorhandler(CsrfRefused)
def csrf_refused(exc: CsrfRefused) -> ResponseReturnValue:
    return page(
        400,
        "Form refused",
        f"This form was not sent by a page of this dashboard ({exc}). Reload the page and try"
        " again.",
    )


@bp.errorhandler(UnknownCampaign)
def unknown_campaign(exc: UnknownCampaign) -> ResponseReturnValue:
    return page(404, "Not found", f"No campaign has id {exc.campaign_id}.")


@bp.errorhandler(InvalidInput)
def invalid_input(exc: InvalidInput) -> ResponseReturnValue:
    return page(422, "Invalid input", str(exc))


def _unavailable(exc: Exception) -> ResponseReturnValue:
    log.warning("dashboard: database unavailable: %s", type(exc).__name__)
    return page(503, "Unavailable", "The database cannot be reached; try again in a moment.")


bp.register_error_handler(OperationalError, _unavailable)
bp.register_error_handler(PoolTimeout, _unavailable)


@bp.errorhandler(Exception)
def unexpected(exc: Exception) -> ResponseReturnValue:
    log.error("dashboard: unhandled error", exc_info=exc)
    return page(500, "Error", "Something went wrong on our side; it has been logged.")
