"""The webhook receiver's app factory: composition of its state, its routes (the webhooks, the
REST API under /api/v1 and the dashboard at /) and its error handlers, with the fast path in front
(webhook_receiver.webhooks)."""

from __future__ import annotations

from flask import Flask

from remixq.config import Settings, load_settings
from webhook_receiver import api, dashboard, state
from webhook_receiver.errors import register_error_handlers
from webhook_receiver.webhooks import FastPath
from webhook_receiver.webhooks import bp as webhooks


def create_app(
    settings: Settings | None = None, *, publisher: state.PublisherFactory | None = None
) -> Flask:
    """`publisher` makes the API's broker publisher (the CLI passes the worker's); without one,
    the jobs of a campaign created over the API are handed to the broker by the relay."""
    settings = settings or load_settings()
    settings.check_secret()  # any WSGI server fails at load, rather than 500 every webhook
    app = Flask("remixq.webhook_receiver")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_webhook_bytes
    state.init_app(app, settings, publisher)
    app.register_blueprint(webhooks)
    api.init_app(app)
    dashboard.init_app(app)
    register_error_handlers(app, http_errors_under={api.PREFIX: api.http_error})
    app.wsgi_app = FastPath(app)  # type: ignore[method-assign]
    return app
