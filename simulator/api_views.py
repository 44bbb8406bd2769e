"""The Runware-compatible HTTP surface: ``POST /v1`` and the generated images.

Thin on purpose: decode the body, hand it to ``Simulator.submit``, serialise the ``Reply``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from simulator.extension import get_simulator

api = Blueprint("runware_api", __name__)


@api.post("/v1")
def submit() -> Any:
    # Undecodable JSON becomes None and is answered like any other bad body (400).
    payload: Any = request.get_json(force=True, silent=True)
    reply = get_simulator().submit(payload, request.headers.get("Authorization"), request.host_url)
    response = jsonify(reply.body)
    response.status_code = reply.status
    response.headers.update(reply.headers)
    return response


@api.get("/images/<image_uuid>.<extension>")
def image(image_uuid: str, extension: str) -> Response:
    answer = get_simulator().serve_image(image_uuid, extension)
    if answer is None:
        abort(
            404,
            description=f"No image {image_uuid}.{extension} (unknown, expired or wrong format).",
        )
    headers = {"Cache-Control": "public, max-age=3600"}
    if answer.declared is None:
        return Response(answer.body, answer.status, mimetype=answer.mime_type, headers=headers)
    # Cut short (A16): the whole length declared, part of the body sent, the connection closed.
    body = answer.body
    response = Response(iter([body]), answer.status, mimetype=answer.mime_type, headers=headers)
    response.headers["Content-Length"] = str(answer.declared)
    response.headers["Connection"] = "close"
    return response
