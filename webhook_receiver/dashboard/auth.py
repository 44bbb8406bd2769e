"""Signing in and out, and the guard in front of every page: a REST API key is exchanged for a
session (the key's id and the time of the sign-in, never the key); each request finds that key
again and refuses the session once it is revoked or the sign-in is older than
REMIXQ_DASHBOARD_SESSION_HOURS. Every POST must carry the session's CSRF token; a read-only key
sees everything and changes nothing."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from flask import (
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import validate_csrf
from sqlalchemy import select
from wtforms import ValidationError

from remixq import apikeys
from remixq.db import transaction
from remixq.models import ApiKey
from webhook_receiver.dashboard.blueprint import bp
from webhook_receiver.state import state

log = logging.getLogger("remixq.dashboard")

# Reachable without a session (the sign-in page and the style sheet it uses).
PUBLIC = frozenset({"dashboard.sign_in", "dashboard.static"})
# POSTs a read-only key may send: they change nothing stored.
READ_ONLY_POSTS = frozenset({"dashboard.sign_in", "dashboard.sign_out", "dashboard.submit"})
# Answered in JSON (the live updates' endpoint), so a script can tell it to sign in again.
JSON_ENDPOINTS = frozenset({"dashboard.live"})


class CsrfRefused(Exception):
    """A POST without this session's CSRF token (webhook_receiver.dashboard.errors: 400)."""


def _sessions() -> Any:
    return state(current_app).api_sessions


@bp.before_request
def guard() -> ResponseReturnValue | None:
    """Sign-in, CSRF and read-only checks for every dashboard request."""
    if request.endpoint == "dashboard.static":
        return None
    if request.method == "POST":
        limit = state(current_app).settings.api_max_body_bytes
        request.max_content_length = limit
        request.max_form_memory_size = limit
        check_csrf()
    if request.endpoint in PUBLIC:
        return None
    user = signed_in()
    if user is None:
        if request.endpoint in JSON_ENDPOINTS:
            body = {"error": {"code": "unauthorized", "message": "sign in to the dashboard"}}
            return jsonify(body), 401
        return redirect(url_for("dashboard.sign_in", next=request.full_path.rstrip("?")))
    g.user = user
    if request.method == "POST" and user.read_only and request.endpoint not in READ_ONLY_POSTS:
        abort(403, f"API key {user.name!r} is read-only: it may look, not act")
    return None


def check_csrf() -> None:
    token = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
    try:
        validate_csrf(
            token,
            secret_key=state(current_app).dashboard_secret,
            time_limit=int(current_app.permanent_session_lifetime.total_seconds()),
        )
    except ValidationError as exc:
        log.info("dashboard refused a POST without its CSRF token", extra={"path": request.path})
        raise CsrfRefused(str(exc)) from None


def signed_in() -> apikeys.Caller | None:
    """The live key this session signed in with; None (and the session cleared) without one."""
    key_id, since = session.get("key_id"), session.get("signed_in_at")
    if not isinstance(key_id, int) or not isinstance(since, int | float):
        return None
    max_age = current_app.permanent_session_lifetime.total_seconds()
    if not 0 <= time.time() - since <= max_age:
        session.clear()
        return None
    with transaction(_sessions()) as db:
        row = db.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.read_only).where(
                ApiKey.id == key_id, ApiKey.revoked_at.is_(None)
            )
        ).one_or_none()
    if row is None:
        session.clear()  # revoked (or deleted): this session is over
        return None
    return apikeys.Caller(id=row.id, name=row.name, read_only=row.read_only)


def _local(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another origin)."""
    if not target:
        return url_for("dashboard.campaigns")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("dashboard.campaigns")
    if "\\" in target:
        return url_for("dashboard.campaigns")
    return target


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    """GET: the form; POST: an API key, exchanged for a session."""
    target = _local(request.values.get("next"))
    if request.method == "GET":
        if signed_in() is not None:
            return redirect(target)
        return render_template("dashboard/sign_in.html", next=target, error=None)
    presented = request.form.get("api_key", "").strip()
    with transaction(_sessions()) as db:
        caller = apikeys.authenticate(db, presented) if presented else None
    if caller is None:
        log.info("dashboard sign-in refused")
        error = "That API key is not valid (unknown, mistyped or revoked)."
        page = render_template("dashboard/sign_in.html", next=target, error=error)
        return page, 401
    session.clear()  # a new session: nothing of the one before (its CSRF token included)
    session.permanent = True
    session["key_id"] = caller.id
    session["signed_in_at"] = int(time.time())
    log.info("dashboard sign-in", extra={"key_name": caller.name})
    return redirect(target)


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    session.clear()
    return redirect(url_for("dashboard.sign_in"))
