"""POST /webhooks/runware: authenticate by the per-job token, store, ingest, answer fast."""

from __future__ import annotations

from uuid import UUID

from flask import Blueprint, current_app, jsonify, request
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


@bp.post(WEBHOOK_PATH)
def runware_webhook() -> ResponseReturnValue:
    receiver = state(current_app)
    task, token = request.args.get("task", ""), request.args.get("token", "")
    try:
        task_uuid = str(UUID(task))
    except ValueError:
        return _unauthorized()
    if not verify_webhook_token(receiver.secret, task_uuid, token):
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
    return jsonify(answer), _STATUS_CODES[outcome.inbox_status]


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    with state(current_app).engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})
