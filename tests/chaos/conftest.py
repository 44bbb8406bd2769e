"""Fixtures of the chaos suite: the figures recorder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.support.chaos import Recorder, record


@pytest.fixture
def reliability(request: pytest.FixtureRequest) -> Recorder:
    """`reliability(scenario, title, figures)` adds one row to the reliability report."""

    def recorder(scenario: str, title: str, figures: Mapping[str, Any]) -> None:
        record(request, scenario, title, figures)

    return recorder
