"""Fixtures: the real simulator served over HTTP on a free port, with the knobs a test names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from simulator.config import SimulatorConfig
from tests.support.simulator import LiveSimulator


@pytest.fixture
def make_live() -> Iterator[Callable[..., LiveSimulator]]:
    """``make_live(**settings)``: a simulator served for real (settings and knobs by name)."""
    started: list[LiveSimulator] = []

    def factory(**settings: Any) -> LiveSimulator:
        live = LiveSimulator(SimulatorConfig().with_overrides(settings)).start()
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()
