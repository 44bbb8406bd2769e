"""A worker's and beat's health and metrics server (REMIXQ_METRICS_PORT): /healthz answers
what the consumer's connection or beat's ticks say, /metrics this process's metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter

from remixq.cli.processes import free_port
from worker import health


@pytest.fixture
def fresh_state() -> Iterator[None]:
    saved = dict(vars(health.state))
    yield
    for name in ("connected", "connected_at", "reconnects", "last_tick"):
        setattr(health.state, name, saved.get(name, getattr(type(health.state), name)))


def serve(check: health.Check) -> tuple[str, Any]:
    registry = CollectorRegistry()
    Counter("remixq_test_things", "Things.", registry=registry).inc(3)
    port = free_port()
    server = health.serve(port, check, registry, host="127.0.0.1")
    return f"http://127.0.0.1:{port}", server


def test_a_worker_is_healthy_while_its_consumer_is_connected(fresh_state: None) -> None:
    base, server = serve(health.worker_health)
    step = health.Connected(parent=None)
    try:
        down = requests.get(f"{base}/healthz", timeout=5)
        assert down.status_code == 503 and down.json()["broker"] == "disconnected"
        step.start(None)
        assert requests.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
        step.stop(None)  # the connection is lost: the consumer stops its steps
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 503
        step.start(None)  # reconnected
        answer = requests.get(f"{base}/healthz", timeout=5).json()
        assert answer["status"] == "ok" and answer["reconnects"] == 1
        page = requests.get(f"{base}/metrics", timeout=5).text
        assert "remixq_test_things_total 3.0" in page
        assert requests.get(f"{base}/other", timeout=5).status_code == 404
    finally:
        server.shutdown()


def test_beat_is_healthy_while_it_ticks(fresh_state: None) -> None:
    health.state.last_tick = None
    assert health.beat_health()[0] is False  # not ticked yet
    health.state.last_tick = time.monotonic()
    assert health.beat_health()[0] is True
    health.state.last_tick = time.monotonic() - health.BEAT_STALE - 1
    healthy, details = health.beat_health()
    assert healthy is False and details["last_tick_s"] > health.BEAT_STALE
