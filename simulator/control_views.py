"""The control API tests and operators use to steer and observe the simulator.

``GET /_control/faults`` the live knobs; ``PUT``/``POST /_control/faults`` a JSON object of knobs
to change (validated as a whole; unknown names or bad values answer 400 and change nothing);
``GET /_control/stats`` the counters (``?tasks=0`` leaves out the per-task table);
``POST /_control/reset`` forgets tasks, images and counters and restores the start knobs.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from pydantic import ValidationError

from simulator.extension import get_simulator

control = Blueprint("control", __name__, url_prefix="/_control")


@control.get("/faults")
def get_faults() -> Any:
    return jsonify(get_simulator().faults.knobs.model_dump())


@control.route("/faults", methods=["PUT", "POST"])
def patch_faults() -> Any:
    changes = request.get_json(force=True, silent=True)
    if not isinstance(changes, dict):
        return jsonify(
            {"errors": [{"code": "invalidRequest", "message": "Send a JSON object of knobs."}]}
        ), 400
    try:
        knobs = get_simulator().faults.patch(changes)
    except ValidationError as exc:
        problems = [
            {
                "code": "invalidKnob",
                "parameter": ".".join(str(part) for part in error["loc"]) or None,
                "message": error["msg"],
            }
            for error in exc.errors(include_url=False, include_input=False)
        ]
        return jsonify({"errors": problems}), 400
    return jsonify(knobs.model_dump())


@control.get("/stats")
def stats() -> Any:
    include_tasks = request.args.get("tasks", "1") not in ("0", "false", "no")
    return jsonify(get_simulator().stats.snapshot(include_tasks=include_tasks))


@control.post("/reset")
def reset() -> Any:
    get_simulator().reset()
    return jsonify({"status": "reset"})
