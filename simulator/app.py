"""Flask application factory of the simulator.

``create_app(config)`` builds one ``Simulator`` (all state lives in it, in memory) and mounts
three blueprints: the Runware-compatible API (``POST /v1``, ``GET /images/...``), Ideogram's
own Remix API (``POST /v1/ideogram-v3/remix``, ``simulator.ideogram``, sharing the same state
and image host) and the control API (``/_control/...``). Nothing happens at import time;
background threads start on first use.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from simulator import ideogram
from simulator.api_views import api
from simulator.config import SimulatorConfig
from simulator.control_views import control
from simulator.engine import Simulator
from simulator.extension import EXTENSION_KEY


def create_app(config: SimulatorConfig | None = None) -> Flask:
    """A ready-to-serve simulator app; ``config`` defaults to ``SimulatorConfig()``."""
    app = Flask("simulator")
    # Runware answers compact JSON and keeps the order of fields as produced.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    simulator = Simulator(config or SimulatorConfig())
    app.extensions[EXTENSION_KEY] = simulator
    app.register_blueprint(api)
    ideogram.register(app, simulator)
    app.register_blueprint(control)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def create_app_from_env() -> Flask:
    """``create_app`` configured from ``REMIXQ_SIM_*``, for WSGI servers that take a factory:
    ``gunicorn -w 1 -k gthread --threads 32 'simulator.app:create_app_from_env()'`` (one worker
    only: all state is in this process's memory)."""
    return create_app(SimulatorConfig.from_env())


def _http_error(exc: HTTPException) -> Any:
    body = {"errors": [{"code": "httpError", "message": exc.description or exc.name}]}
    return jsonify(body), exc.code or 500


def _unexpected_error(exc: Exception) -> Any:
    # Never a stack trace to the caller; the log has it.
    current_app.logger.error("unexpected simulator error", exc_info=exc)
    body = {"errors": [{"code": "internalServerError", "message": "Unexpected simulator error."}]}
    return jsonify(body), 500
