"""Health and metrics of a worker or beat: `/healthz` and `/metrics` on REMIXQ_METRICS_PORT.

A worker is healthy while its consumer is connected to the broker (`Connected`, a bootstep of
the consumer: started once the connection is up and its queues consumed, stopped when the
connection is lost, until the consumer has reconnected). Beat is healthy while its scheduler
ticks (`TickingScheduler`): it ticks at least every `BEAT_MAX_LOOP` seconds, so a beat whose
last tick is older than `BEAT_STALE` seconds is stuck. `remixq health URL` is the check a
container runtime runs (docker-compose.yml).

The server is prometheus-client's WSGI app behind a small router, on a daemon thread; with
PROMETHEUS_MULTIPROC_DIR set (a prefork pool) it adds up the processes' files.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from celery import bootsteps
from celery.beat import PersistentScheduler
from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger("remixq.health")

BEAT_MAX_LOOP = 30.0  # beat_max_loop_interval: beat wakes at least this often
BEAT_STALE = 3 * BEAT_MAX_LOOP

# (healthy, details) of this process, answered by /healthz.
Check = Callable[[], tuple[bool, dict[str, Any]]]


class _State:
    connected = False
    connected_at: float | None = None
    reconnects = 0
    last_tick: float | None = None


state = _State()


class Connected(bootsteps.StartStopStep):
    """A consumer bootstep: the consumer's connection is up between `start` and `stop`."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, parent: Any) -> None:  # noqa: ARG002 (Celery's signature)
        if state.connected_at is not None:
            state.reconnects += 1
        state.connected, state.connected_at = True, time.monotonic()

    def stop(self, parent: Any) -> None:  # noqa: ARG002
        state.connected = False

    def shutdown(self, parent: Any) -> None:  # noqa: ARG002
        state.connected = False


class TickingScheduler(PersistentScheduler):
    """Celery beat's scheduler (`beat_scheduler`), remembering when it last ticked."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        state.last_tick = time.monotonic()
        return float(super().tick(*args, **kwargs))


def worker_health() -> tuple[bool, dict[str, Any]]:
    return state.connected, {
        "role": "worker",
        "broker": "connected" if state.connected else "disconnected",
        "reconnects": state.reconnects,
    }


def beat_health() -> tuple[bool, dict[str, Any]]:
    age = None if state.last_tick is None else time.monotonic() - state.last_tick
    healthy = age is not None and age < BEAT_STALE
    return healthy, {"role": "beat", "last_tick_s": None if age is None else round(age, 1)}


def registry(*collectors: Collector) -> CollectorRegistry:
    """This process's metrics (every process's with PROMETHEUS_MULTIPROC_DIR), plus
    `collectors`."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        found = CollectorRegistry()
        MultiProcessCollector(found)
    else:
        found = REGISTRY
    for collector in collectors:
        found.register(collector)
    return found


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # a scrape every few seconds is no news
        pass


def serve(port: int, check: Check, metrics: CollectorRegistry, *, host: str = "0.0.0.0") -> Any:  # noqa: S104
    """Serve `/healthz` (200 or 503 with `check`'s details) and `/metrics` on `port`, from a
    daemon thread; returns the server (`shutdown()` stops it)."""
    exposition = make_wsgi_app(metrics)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            healthy, details = check()
            body = json.dumps({"status": "ok" if healthy else "unhealthy", **details}).encode()
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        if path == "/metrics":
            return exposition(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error":{"code":"not_found","message":"/healthz or /metrics"}}']

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="remixq-metrics", daemon=True)
    thread.start()
    log.info("serving /healthz and /metrics", extra={"port": port})
    return server
