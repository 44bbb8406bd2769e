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
    """A place among the calls in flight of the shared provider limit, once no pause holds the
    callers back; its wait measured. The call's turn at the rate is `provider_call`'s."""
    started = time.monotonic()
    with runtime.limit.permit(timeout, paced=False):
        m.LIMIT_WAIT_SECONDS.observe(time.monotonic() - started)
        yield


@contextmanager
def provider_call(runtime: Runtime, operation: str) -> Iterator[None]:
    """The call's turn at the rate, taken just before it (the provider counts arrivals: work
    done between the turn and the call, a claim's transaction, would move the call later by
    uneven amounts), then the call timed, by operation and outcome. Raises LimitTimeout when
    no turn comes within PACE_TIMEOUT."""
    waited = time.monotonic()
    runtime.limit.pace(PACE_TIMEOUT)
    m.LIMIT_WAIT_SECONDS.observe(time.monotonic() - waited)
    started, outcome = time.monotonic(), "error"
    try:
        yield
        outcome = "ok"
    finally:
        m.PROVIDER_SECONDS.labels(operation, outcome).observe(time.monotonic() - started)
