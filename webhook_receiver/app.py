"""The webhook receiver's app factory: composition of its state, its routes and its error
handlers, with the fast path in front (webhook_receiver.webhooks)."""

from __future__ import annotations

from flask import Flask

from remixq.config import Settings, load_settings
from webhook_receiver import state
from webhook_receiver.errors import register_error_handlers
from webhook_receiver.webhooks import FastPath
from webhook_receiver.webhooks import bp as webhooks


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    settings.check_secret()  # any WSGI server fails at load, rather than 500 every webhook
    app = Flask("remixq.webhook_receiver")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_webhook_bytes
    state.init_app(app, settings)
    app.register_blueprint(webhooks)
    register_error_handlers(app)
    app.wsgi_app = FastPath(app)  # type: ignore[method-assign]
    return app
