"""The current fault knobs and the random draws that apply them.

Knobs are an immutable ``FaultKnobs`` swapped as a whole by ``PUT /_control/faults``; a request
reads them once, so one submission never sees half of a patch.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from enum import Enum
from typing import Any

from simulator.config import FaultKnobs


class SubmitFault(Enum):
    """What happens to one POST /v1 before (or instead of) its normal answer."""

    NONE = "none"
    HTTP_429 = "http_429"
    HTTP_500 = "http_500"
    HTTP_503 = "http_503"
    HTTP_504 = "http_504"
    TIMEOUT = "submit_timeout"
    TIMEOUT_AFTER_ACCEPT = "submit_timeout_after_accept"

    @property
    def http_status(self) -> int | None:
        return int(self.value[5:]) if self.value.startswith("http_") else None


class ImageFault(Enum):
    """What happens to one GET of a generated image (assumptions A16)."""

    NONE = "none"
    HTTP_500 = "image_500"
    TRUNCATED = "image_truncated"
    GARBAGE = "image_garbage"


_IMAGE_ODDS = (
    ("image_500_rate", ImageFault.HTTP_500),
    ("image_truncate_rate", ImageFault.TRUNCATED),
    ("image_garbage_rate", ImageFault.GARBAGE),
)

_SUBMIT_ODDS = (
    ("submit_429_rate", SubmitFault.HTTP_429),
    ("submit_500_rate", SubmitFault.HTTP_500),
    ("submit_503_rate", SubmitFault.HTTP_503),
    ("submit_504_rate", SubmitFault.HTTP_504),
    ("submit_timeout_rate", SubmitFault.TIMEOUT),
    ("submit_timeout_after_accept_rate", SubmitFault.TIMEOUT_AFTER_ACCEPT),
)


class Faults:
    """Holds the live knobs and a random generator (seedable for reproducible runs)."""

    def __init__(self, initial: FaultKnobs, seed: int | None = None) -> None:
        self._initial = initial
        self._knobs = initial
        self._lock = threading.Lock()
        self.rng = random.Random(seed)

    @property
    def knobs(self) -> FaultKnobs:
        return self._knobs

    def patch(self, changes: Mapping[str, Any]) -> FaultKnobs:
        """Apply a JSON patch of knobs; raises pydantic's ValidationError when it is refused."""
        with self._lock:
            self._knobs = self._knobs.patched(changes)
            return self._knobs

    def restore(self) -> None:
        with self._lock:
            self._knobs = self._initial

    def chance(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def submit_fault(self, knobs: FaultKnobs) -> SubmitFault:
        # One draw split into exclusive intervals, so each rate is exactly its share.
        draw = self.rng.random()
        edge = 0.0
        for name, fault in _SUBMIT_ODDS:
            edge += getattr(knobs, name)
            if draw < edge:
                return fault
        return SubmitFault.NONE

    def image_fault(self, knobs: FaultKnobs) -> ImageFault:
        # One draw, exclusive intervals, as for the submit faults.
        draw = self.rng.random()
        edge = 0.0
        for name, fault in _IMAGE_ODDS:
            edge += getattr(knobs, name)
            if draw < edge:
                return fault
        return ImageFault.NONE

    def latency_s(self, knobs: FaultKnobs) -> float:
        """One result's processing time: uniform in mean ± jitter, never negative (A13)."""
        mean, jitter = knobs.latency_ms, knobs.latency_jitter_ms
        return max(0.0, self.rng.uniform(mean - jitter, mean + jitter)) / 1000.0

    def ideogram_latency_s(self, knobs: FaultKnobs) -> float:
        """How long one Ideogram remix call generates: uniform in mean ± jitter, never < 0."""
        mean, jitter = knobs.ideogram_latency_ms, knobs.ideogram_latency_jitter_ms
        return max(0.0, self.rng.uniform(mean - jitter, mean + jitter)) / 1000.0

    def backoff_s(self, knobs: FaultKnobs, retry: int) -> float:
        """Delay before retry number ``retry`` (1-based): base doubling, jittered, capped."""
        base = knobs.webhook_backoff_base_ms * 2 ** (retry - 1)
        jitter = knobs.webhook_backoff_jitter
        return (
            min(knobs.webhook_backoff_cap_ms, base * self.rng.uniform(1 - jitter, 1 + jitter))
            / 1000.0
        )
