"""Fixtures: apps on the Flask test client, live simulators, webhook receivers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from simulator.app import create_app
from simulator.config import SimulatorConfig
from simulator.extension import EXTENSION_KEY
from tests.support.simulator import LiveSimulator, MakeClient, Receiver


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """``make_client(**settings)``: a test client of a fresh app (knobs as flat names)."""
    apps: list[Flask] = []

    def factory(**settings: Any) -> FlaskClient:
        app = create_app(SimulatorConfig().with_overrides(settings))
        apps.append(app)
        return app.test_client()

    yield factory
    for app in apps:
        app.extensions[EXTENSION_KEY].close()


@pytest.fixture
def client(make_client: MakeClient) -> FlaskClient:
    return make_client()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def make_live() -> Iterator[Callable[..., LiveSimulator]]:
    started: list[LiveSimulator] = []

    def factory(**settings: Any) -> LiveSimulator:
        live = LiveSimulator(SimulatorConfig().with_overrides(settings)).start()
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()
