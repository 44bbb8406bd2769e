"""Calls to the provider and waits for the shared limit, measured (remixq.metrics): shared by
the submission task and the reconciler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from remixq import metrics as m
from worker.runtime import Runtime

# The longest a call waits for its turn at the rate once its jobs are claimed: far below the
# claim lease (REMIXQ_CLAIM_LEASE), and far above what a turn takes (calls in flight / rate).
PACE_TIMEOUT = 15.0


@contextmanager
def waited_permit(runtime: Runtime, timeout: float = 300.0) -> Iterator[None]:
    """A permit of the shared provider limit (a place in flight and a turn at the pace, once no
    pause holds the callers back), taken before the claim; its wait measured."""
    started = time.monotonic()
    with runtime.limit.permit(timeout):
        m.LIMIT_WAIT_SECONDS.observe(time.monotonic() - started)
        yield


@contextmanager
def provider_call(runtime: Runtime, operation: str) -> Iterator[None]:
    """The call's turn to be sent, taken just before it (the provider counts arrivals: work
    done since the permit, a claim's transaction, moved calls later by uneven amounts), then
    the call timed, by operation and outcome. Raises LimitTimeout when no turn comes within
    PACE_TIMEOUT (worker.ratelimit)."""
    waited = time.monotonic()
    runtime.limit.pace(PACE_TIMEOUT)
    m.LIMIT_WAIT_SECONDS.observe(time.monotonic() - waited)
    started, outcome = time.monotonic(), "error"
    try:
        yield
        outcome = "ok"
    finally:
        m.PROVIDER_SECONDS.labels(operation, outcome).observe(time.monotonic() - started)
