"""Serving the receiver with gunicorn (a production server, not Flask's development one)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from remixq.config import Settings
from webhook_receiver.app import create_app


class _Gunicorn(BaseApplication):
    def __init__(self, load: Callable[[], Any], options: dict[str, Any]):
        self._load, self.options = load, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._load()


def gunicorn_options(
    host: str, port: int, *, workers: int | None = None, threads: int = 8
) -> dict[str, Any]:
    """The server settings of the receiver (the benchmark serves its baseline with the same)."""
    return {
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


def run(load: Callable[[], Any], options: dict[str, Any]) -> None:
    """Serve the WSGI app `load()` returns (called in each worker) with these options."""
    _Gunicorn(load, options).run()


def serve(
    settings: Settings, host: str, port: int, *, workers: int | None = None, threads: int = 8
) -> None:
    """Blocking; SIGTERM makes gunicorn finish the requests in flight before exiting."""
    run(
        lambda: create_app(settings),
        gunicorn_options(host, port, workers=workers, threads=threads),
    )
