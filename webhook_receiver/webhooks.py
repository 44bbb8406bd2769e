"""POST /webhooks/runware: authenticate by the per-job token, store, ingest, answer fast."""

from __future__ import annotations

import json
from uuid import UUID

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from remixq.security import WEBHOOK_PATH, verify_webhook_token
from webhook_receiver.app import state

bp = Blueprint("webhooks", __name__)

_STATUS_CODES = {"processed": 200, "orphan": 202, "invalid": 400, "rejected": 400}


def _unauthorized() -> ResponseReturnValue:
    return jsonify(
        {"error": "unauthorized", "message": "missing or wrong webhook token for this task"}
    ), 401


@bp.post(f"{WEBHOOK_PATH}/<task>/<token>")
@bp.post(WEBHOOK_PATH)  # the query form (?task=...&token=...) of URLs issued before
def runware_webhook(task: str | None = None, token: str | None = None) -> ResponseReturnValue:
    receiver = state(current_app)
    if task is None:
        task, token = request.args.get("task", ""), request.args.get("token", "")
    try:
        task_uuid = str(UUID(task))
    except ValueError:
        return _unauthorized()
    if not verify_webhook_token(receiver.secret, task_uuid, token or ""):
        return _unauthorized()
    body = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: 413 before any read
    # Stored by the process's writer with the webhooks that arrived together; this returns
    # after the commit (webhook_receiver.group_commit).
    outcome = receiver.writer.ingest(body, task_uuid)
    answer = {
        "status": outcome.inbox_status,
        "images_stored": outcome.images_stored,
        "duplicates": outcome.duplicates,
    }
    if outcome.message:
        answer["message"] = outcome.message
    return Response(
        json.dumps(answer, separators=(",", ":")),
        _STATUS_CODES[outcome.inbox_status],
        mimetype="application/json",
    )


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    with state(current_app).engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})
