"""The dashboard's blueprint, the helpers its templates share (formatting filters, the CSRF
token, the signed-in key) and the headers every page carries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, g, request
from flask_wtf.csrf import generate_csrf

from remixq.budgets import usd
from remixq.db import json_dumps
from remixq.states import OPEN, JobStatus
from webhook_receiver.state import state

bp = Blueprint(
    "dashboard",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/dashboard-static",
)

# Statuses in the order the progress bars and counts show them: the final ones first.
STATUSES = (
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
    JobStatus.SUBMITTED,
    JobStatus.SUBMITTING,
    JobStatus.QUEUED,
    JobStatus.PENDING,
)
# A job in none of these will not change any more (completed, failed, cancelled).
OPEN_STATUSES = frozenset(s.value for s in OPEN)

# Nothing is loaded from another origin but images (a provider's URL, until the image is stored
# here); no inline script or style attribute runs; no other site may frame a page.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' https: http:; script-src 'self'; style-src 'self';"
    " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def csrf_token() -> str:
    """The signed CSRF token of this session, for a form's hidden field."""
    from flask import current_app

    token: str = generate_csrf(secret_key=state(current_app).dashboard_secret)
    return token


@bp.app_template_filter("usd")
def usd_filter(value: Decimal | str | None) -> str:
    if value is None:
        return "—"
    return f"${usd(Decimal(value))}"


@bp.app_template_filter("when")
def when_filter(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("iso")
def iso_filter(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


@bp.app_template_filter("json")
def json_filter(value: Any) -> str:
    """A value as compact JSON text (a variant's values as the spec wrote them)."""
    return json_dumps(value)


@bp.app_template_filter("variant_query")
def variant_query_filter(variant: dict[str, Any] | None) -> dict[str, str]:
    """A variant as the gallery's query parameters (`v.<axis>` = the value's JSON)."""
    return {f"v.{axis}": json_dumps(value) for axis, value in (variant or {}).items()}


@bp.context_processor
def shared() -> dict[str, Any]:
    return {
        "csrf_token": csrf_token,
        "user": g.get("user"),
        "statuses": [s.value for s in STATUSES],
    }


@bp.after_request
def headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.endpoint != "dashboard.static":
        # Pages and their data are private: no shared cache keeps them, no browser cache
        # shows them after a sign-out (images say otherwise themselves).
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def now() -> datetime:
    return datetime.now(UTC)
