"""Who is calling: every API request but the OpenAPI document carries `Authorization: Bearer
<key>`; a read-only key may only read. The body's size is checked here too, before any of it
is read."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from remixq import apikeys
from remixq.db import transaction
from webhook_receiver.api.errors import ApiError
from webhook_receiver.state import state

log = logging.getLogger("remixq.api")

READS = frozenset({"GET", "HEAD", "OPTIONS"})
View = TypeVar("View", bound=Callable[..., Any])


def changes_nothing(view: View) -> View:
    """Mark a view that a read-only key may call whatever its method: a POST that only
    computes (an estimate) changes nothing. Put it above the route's other decorators but
    the route's own."""
    view.changes_nothing = True  # type: ignore[attr-defined]
    return view


def _reads() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return request.method in READS or getattr(view, "changes_nothing", False)


def authenticate() -> None:
    """The blueprint's before_request: 401 without a live key, 403 for a read-only key that
    would change something, 413 for a body over REMIXQ_API_MAX_BODY_BYTES (by its declared
    length; a chunked body is cut off at the limit as it is read)."""
    receiver = state(current_app)
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise ApiError(401, "unauthorized", "send the header Authorization: Bearer <API key>")
    with transaction(receiver.api_sessions) as session:
        caller = apikeys.authenticate(session, presented)
    if caller is None:
        raise ApiError(401, "unauthorized", "the API key is not valid (unknown or revoked)")
    g.api_key = caller
    if caller.read_only and not _reads():
        log.info("api refused read-only key", extra={"key_name": caller.name})
        raise ApiError(403, "forbidden", f"API key {caller.name!r} is read-only")
    limit = receiver.settings.api_max_body_bytes
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413,
            "body_too_large",
            f"the body is {request.content_length} bytes; at most {limit}"
            " (REMIXQ_API_MAX_BODY_BYTES)",
        )


def caller() -> apikeys.Caller:
    found: apikeys.Caller = g.api_key
    return found
