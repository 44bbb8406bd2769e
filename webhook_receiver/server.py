"""Serving the receiver with gunicorn (a production server, not Flask's development one).

The workers are gevent's: a request spends most of its time waiting for its webhook's commit
(webhook_receiver.group_commit), and a greenlet waits for far less CPU than a thread, which
under gthread paid a futex wake-up and a GIL hand-off for every wait (docs/benchmarks.md).
psycopg 3 waits cooperatively when it is imported after gevent's monkey-patching, which the
worker does before it loads the app; nothing here imports psycopg in the master.

The worker class is gevent's with deadlines for slow clients and shedding of the slowest when a
process nears its connection limit (webhook_receiver.connections says how and why).
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from remixq.config import Settings
from webhook_receiver.connections import guarded_worker
from webhook_receiver.gunicorn_logs import RedactingLogger

# A keep-alive connection is closed after this many requests: the last answer says
# "Connection: close", and the client connects again. A connection stays with the worker
# process that accepted it, and connections opened together and kept (a load balancer's, a
# sender's pool, the benchmark's load generator) are often accepted mostly by one process while
# the others idle; each process's writer batches only what its own connections have in flight.
# Reconnecting spreads them again (docs/benchmarks.md), as nginx's keepalive_requests does.
REQUESTS_PER_CONNECTION = 100


def _recycle_connections(worker: Any, request: Any) -> None:  # noqa: ARG001 (gunicorn's hook)
    """gunicorn's pre_request hook: the connection's last request is answered with
    "Connection: close" (`req_number` counts the requests of a connection from 1)."""
    if request.req_number >= REQUESTS_PER_CONNECTION:
        request.must_close = True


def use_multiprocess_metrics() -> None:
    """prometheus-client's multiprocess mode for gunicorn's workers, called before anything
    imports prometheus-client: each worker writes its metrics to files in
    PROMETHEUS_MULTIPROC_DIR, which `/metrics` adds up. Unset, a private folder of this
    receiver's, removed at exit. Set by the operator, it is theirs: they empty it before a
    start, as prometheus-client asks."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    folder = tempfile.mkdtemp(prefix="remixq-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def _metrics_of_dead_worker(server: Any, worker: Any) -> None:  # noqa: ARG001 (gunicorn's hook)
    """gunicorn's child_exit hook: a worker process that exited leaves its metrics' files; its
    gauges are dropped from `/metrics` (prometheus-client's multiprocess mode), its counters
    kept (they still count what it did)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def _warm_and_freeze(worker: Any) -> None:
    """gunicorn's post_worker_init hook, once the worker has loaded the app: the receiver makes
    its engine and first connection now (`state.warm_up`), then everything made so far (the
    imported modules, the app, the driver) goes to the collector's permanent generation. Full
    collections otherwise walked those ~100,000 objects in a worker's first seconds and again
    as its heap grew, 60-85 ms of CPU each during which the worker answered nothing
    (docs/benchmarks.md, "Issue 14")."""
    from webhook_receiver.state import warm_up  # in the worker, after gevent's patch

    warm_up(worker.wsgi)
    gc.collect()
    gc.freeze()


class _Gunicorn(BaseApplication):
    def __init__(self, load: Callable[[], Any], options: dict[str, Any]):
        self._load, self.options = load, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # GUNICORN_CMD_ARGS wins, as with the `gunicorn` command (e.g. "--access-logformat ...",
        # "--graceful-timeout 60"); our hooks and worker class are set again after it, since the
        # receiver depends on them.
        parsed = self.cfg.parser().parse_args(self.cfg.get_cmd_args_from_env())
        for key, value in vars(parsed).items():
            if value is not None and key != "args":
                self.cfg.set(key.lower(), value)
        for key in _REQUIRED_OPTIONS:
            if key in self.options:
                self.cfg.set(key, self.options[key])

    def load(self) -> Any:
        return self._load()


# What GUNICORN_CMD_ARGS may not change: the worker class (deadlines for slow clients), the
# logger class (no webhook token in a line) and the hooks.
_REQUIRED_OPTIONS = (
    "worker_class",
    "logger_class",
    "pre_request",
    "post_worker_init",
    "child_exit",
)


def gunicorn_options(
    host: str,
    port: int,
    *,
    workers: int | None = None,
    connections: int = 1000,
    header_timeout: float = 10.0,
    body_timeout: float = 10.0,
    access_log: bool = False,
) -> dict[str, Any]:
    """The server settings of the receiver (the benchmark serves its baseline with the same)."""
    return {
        "bind": f"{host}:{port}",
        # One process per CPU: a gevent worker serves many connections at once, so more
        # processes than CPUs only add context switches; and each process's writer batches what
        # its own connections have in flight, so fewer processes commit larger batches
        # (docs/benchmarks.md).
        "workers": workers or os.cpu_count() or 1,
        "worker_class": guarded_worker(header_timeout=header_timeout, body_timeout=body_timeout),
        "worker_connections": connections,
        "graceful_timeout": 20,
        "timeout": 30,
        "keepalive": 5,
        # Off by default (a line per webhook); on, on stderr with the other lines, tokens
        # redacted like every line (RedactingLogger).
        "accesslog": "-" if access_log else None,
        "loglevel": "warning",
        "logger_class": RedactingLogger,  # no webhook token in gunicorn's lines
        "pre_request": _recycle_connections,
        "post_worker_init": _warm_and_freeze,
        "child_exit": _metrics_of_dead_worker,
    }


def run(load: Callable[[], Any], options: dict[str, Any]) -> None:
    """Serve the WSGI app `load()` returns (called in each worker) with these options."""
    _Gunicorn(load, options).run()


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    workers: int | None = None,
    connections: int | None = None,
    publisher: Any = None,
) -> None:
    """Blocking; SIGTERM makes gunicorn finish the requests in flight before exiting.
    `publisher` makes the REST API's broker publisher (webhook_receiver.state.PublisherFactory)."""

    def load() -> Any:
        # Imported in each worker, after gevent has patched it: the app imports the provider
        # client, hence requests and ssl, which must not be imported before the patch
        # (gevent's MonkeyPatchWarning, and an ssl module left unpatched).
        from webhook_receiver.app import create_app

        return create_app(settings, publisher=publisher)

    options = gunicorn_options(
        host,
        port,
        workers=workers,
        connections=connections or settings.receiver_connections,
        header_timeout=settings.receiver_header_timeout,
        body_timeout=settings.receiver_body_timeout,
        access_log=settings.access_log,
    )
    run(load, options)
