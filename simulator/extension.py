"""Where the app keeps its ``Simulator``, and the typed way views get it back."""

from __future__ import annotations

from flask import current_app

from simulator.engine import Simulator

EXTENSION_KEY = "remixq_simulator"


def get_simulator() -> Simulator:
    simulator = current_app.extensions[EXTENSION_KEY]
    assert isinstance(simulator, Simulator)
    return simulator
