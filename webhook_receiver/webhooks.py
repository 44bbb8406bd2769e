"""POST /webhooks/runware/<taskUUID>/<token>: authenticate by the per-job token, store, answer.

A webhook takes one of two ways in, with one answer. The common case, a webhook on the URL its
job was issued (taskUUID and token in the path), is served by `FastPath`, a plain WSGI callable
that `create_app` puts in front of Flask: Flask's request machinery (request context, URL map,
request and response objects, signals) costs several times what this path does per webhook
(docs/benchmarks.md). Anything else goes to Flask: a wrong token or taskUUID, another method, and
the query form of URLs issued by earlier versions (`?task=...&token=...`), which the route below
serves with the same `store`. Both read the body with `read_body` (at most the size limit, with
a Content-Length or chunked; over it a 413 and nothing stored) and answer errors with the same
JSON documents (webhook_receiver.errors).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from uuid import UUID

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from remixq import logs, metrics
from remixq.security import WEBHOOK_PATH, verify_webhook_token
from remixq.states import InboxStatus
from webhook_receiver.errors import (
    INTERNAL_ERROR_BODY,
    RETRY_AFTER,
    UNAVAILABLE,
    UNAVAILABLE_BODY,
    http_error_body,
)
from webhook_receiver.state import ReceiverState, state

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

bp = Blueprint("webhooks", __name__)

# The HTTP answer to each inbox status: a redelivery of an orphan may find its job later (202).
_STATUS_CODES = {
    InboxStatus.PROCESSED: 200,
    InboxStatus.ORPHAN: 202,
    InboxStatus.INVALID: 400,
    InboxStatus.REJECTED: 400,
}


def _task_uuid(task: str, token: str, secret: bytes) -> str | None:
    """The taskUUID, canonical, when `token` is its webhook token; None otherwise."""
    try:
        task_uuid = str(UUID(task))
    except ValueError:
        return None
    return task_uuid if verify_webhook_token(secret, task_uuid, token) else None


def store(receiver: ReceiverState, body: bytes, task_uuid: str) -> tuple[int, bytes]:
    """Store one webhook and return the answer's status code and JSON document. The process's
    writer stores it with the webhooks that arrived together and returns after the commit
    (webhook_receiver.group_commit). Counted by outcome, and timed (remixq.metrics)."""
    started = time.monotonic()
    try:
        outcome = receiver.writer.ingest(body, task_uuid)
    except UNAVAILABLE:
        metrics.WEBHOOKS.labels("unavailable").inc()
        raise
    finally:
        metrics.INGEST_SECONDS.observe(time.monotonic() - started)
    metrics.observe_webhook(outcome.inbox_status, outcome.images_stored, outcome.duplicates)
    answer: dict[str, Any] = {
        "status": outcome.inbox_status,
        "images_stored": outcome.images_stored,
        "duplicates": outcome.duplicates,
    }
    if outcome.message:
        answer["message"] = outcome.message
    return _STATUS_CODES[outcome.inbox_status], _json(answer)


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


@bp.post(f"{WEBHOOK_PATH}/<task>/<token>")
@bp.post(WEBHOOK_PATH)  # the query form (?task=...&token=...) of URLs issued before
def runware_webhook(task: str | None = None, token: str | None = None) -> ResponseReturnValue:
    receiver = state(current_app)
    if task is None:
        task, token = request.args.get("task", ""), request.args.get("token", "")
    task_uuid = _task_uuid(task, token or "", receiver.secret)
    if task_uuid is None:
        metrics.WEBHOOKS.labels("unauthorized").inc()
        return jsonify(
            {"error": "unauthorized", "message": "missing or wrong webhook token for this task"}
        ), 401
    body = read_body(request.environ, receiver.settings.max_webhook_bytes)
    with logs.bound(task_uuid=task_uuid):
        code, document = store(receiver, body, task_uuid)
    return Response(document, code, mimetype="application/json")


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is up and serving (liveness): nothing else is asked, so a database outage
    never makes an orchestrator restart receivers that would only wait for it too."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Whether this process can take webhooks now: the database answers, the broker is
    reachable (the REST API hands jobs to it), its writer runs (started again if it had
    stopped) and its queue is below the bound. A 503 tells a load balancer to send elsewhere,
    and an orchestrator to recycle the process should it last. The database and broker checks
    are remembered for a second (webhook_receiver.state.Readiness), so a probe every second
    costs each at most one round trip."""
    receiver = state(current_app)
    writer = receiver.writer
    writer.start()
    database, broker = receiver.readiness.database(), receiver.readiness.broker()
    ready = writer.alive() and not writer.full() and database == "ok" and broker == "ok"
    document = {
        "status": "ready" if ready else "unready",
        "database": database,
        "broker": broker,
        "writer": "running" if writer.alive() else "stopped",
        "queued": writer.queued(),
        "restarts": writer.stats.restarts,
    }
    response = jsonify(document)
    if not ready:
        response.headers["Retry-After"] = RETRY_AFTER
    return response, 200 if ready else 503


@bp.get("/metrics")
def metrics_page() -> ResponseReturnValue:
    """Prometheus' text format: every gunicorn worker process's metrics added up
    (prometheus-client's multiprocess mode) and the database's gauges."""
    body, content_type = state(current_app).metrics_page()
    return Response(body, 200, content_type=content_type)


def read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """The request's body, of at most `limit` bytes. With a Content-Length over it, a 413 before
    any read; without one (chunked), at most `limit` + 1 bytes are read, and a 413 if there are
    more (the server closes the connection after it: webhook_receiver.connections). A body cut
    short of its Content-Length is a 400. Nothing over the limit is ever stored, or truncated."""
    stream = environ["wsgi.input"]
    too_large = RequestEntityTooLarge(f"the body is over the limit of {limit} bytes")
    length = _content_length(environ)
    if length is not None:
        if length > limit:
            raise too_large
        body: bytes = stream.read(length)
        if len(body) < length:  # the client went away mid-body: nothing to store
            raise ClientDisconnected()
        return body
    parts, size = [], 0
    while size <= limit:  # a WSGI read may return less than asked before the end
        part = stream.read(limit + 1 - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise too_large
    return b"".join(parts)


class FastPath:
    """The app's WSGI entry: an authenticated webhook in the issued form, with a body within the
    limit, is stored and answered here; every other request goes to Flask (`fallback`),
    untouched (its body unread)."""

    def __init__(self, app: Flask):
        self._receiver = state(app)
        self._fallback: WSGIApplication = app.wsgi_app
        self._log = app.logger
        self._prefix = f"{WEBHOOK_PATH}/"
        self._limit = self._receiver.settings.max_webhook_bytes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        task_uuid = self._authenticated(environ)
        if task_uuid is None:
            return self._fallback(environ, start_response)
        try:
            body = read_body(environ, self._limit)
        except HTTPException as exc:
            return _answer(start_response, exc.code or 400, _json(http_error_body(exc)))
        token = logs.bind(task_uuid=task_uuid)
        try:
            code, document = store(self._receiver, body, task_uuid)
        except UNAVAILABLE as exc:
            self._log.warning("database unavailable: %s", type(exc).__name__)
            headers = [("Retry-After", RETRY_AFTER)]
            return _answer(start_response, 503, _json(UNAVAILABLE_BODY), headers)
        except Exception:  # noqa: BLE001 (a JSON 500, never a traceback to the sender)
            self._log.exception("unhandled error")
            return _answer(start_response, 500, _json(INTERNAL_ERROR_BODY))
        finally:
            logs.unbind(token)
        return _answer(start_response, code, document)

    def _authenticated(self, environ: WSGIEnvironment) -> str | None:
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        path: str = environ.get("PATH_INFO", "")
        if not path.startswith(self._prefix):
            return None
        task, _, token = path[len(self._prefix) :].partition("/")
        if not token or "/" in token:
            return None
        return _task_uuid(task, token, self._receiver.secret)


def _content_length(environ: WSGIEnvironment) -> int | None:
    value = environ.get("CONTENT_LENGTH", "")
    return int(value) if value.isdigit() else None


def _answer(
    start_response: StartResponse,
    code: int,
    document: bytes,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(
        f"{code} {HTTPStatus(code).phrase}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(document))),
            *(headers or []),
        ],
    )
    return [document]
