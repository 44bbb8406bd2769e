"""Calls to the provider and waits for the shared limit, measured (remixq.metrics): shared by
the submission task and the reconciler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from remixq import metrics as m
from worker.runtime import Runtime


@contextmanager
def waited_permit(runtime: Runtime, timeout: float = 300.0) -> Iterator[None]:
    """A permit of the shared provider limit, its wait measured."""
    started = time.monotonic()
    with runtime.limit.permit(timeout):
        m.LIMIT_WAIT_SECONDS.observe(time.monotonic() - started)
        yield


@contextmanager
def provider_call(operation: str) -> Iterator[None]:
    """Time one call to the provider's API, by operation and outcome."""
    started, outcome = time.monotonic(), "error"
    try:
        yield
        outcome = "ok"
    finally:
        m.PROVIDER_SECONDS.labels(operation, outcome).observe(time.monotonic() - started)
