"""Serving the receiver with gunicorn (a production server, not Flask's development one)."""

from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication

from remixq.config import Settings
from webhook_receiver.app import create_app


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]):
        self.settings, self.options = settings, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(self.settings)


def serve(
    settings: Settings, host: str, port: int, *, workers: int | None = None, threads: int = 8
) -> None:
    """Blocking; SIGTERM makes gunicorn finish the requests in flight before exiting."""
    options = {
        "bind": f"{host}:{port}",
        "workers": workers or (os.cpu_count() or 1) + 1,
        "worker_class": "gthread",
        "threads": threads,
        "graceful_timeout": 20,
        "timeout": 30,
        "keepalive": 5,
        "accesslog": None,
        "loglevel": "warning",
    }
    _Gunicorn(settings, options).run()
