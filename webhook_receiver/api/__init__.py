"""The REST API under /api/v1, served by the receiver's app: API keys (remixq.apikeys),
campaigns created from Runware requests, read, paged and controlled, the schedules that make
campaigns (api.schedules), and the OpenAPI document generated from the same typed schemas that
validate the requests."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from webhook_receiver.api import schedules  # noqa: F401 (adds its routes to the blueprint)
from webhook_receiver.api.errors import PREFIX, http_error
from webhook_receiver.api.routes import bp
from webhook_receiver.api.spec import spec

__all__ = ["PREFIX", "http_error", "init_app"]


OPENAPI_PATH = "/api/v1/openapi.json"


def openapi() -> Any:
    """The OpenAPI 3.1 document (no key needed), generated once from the routes' schemas."""
    return current_app.json.response(spec.spec)


def init_app(app: Flask) -> None:
    """Register the API's routes, its error handlers and its OpenAPI document on `app`."""
    app.register_blueprint(bp)
    spec.app = app  # as spectree's `register` would, which would serve the document elsewhere
    app.add_url_rule(OPENAPI_PATH, endpoint="api_openapi", view_func=openapi)
