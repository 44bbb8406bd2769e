"""Graceful shutdown: SIGTERM to a worker or to the receiver mid-flight loses nothing.

Here the safety nets are switched off (claim lease, relay and reconciler wait ten minutes), so
that the campaign can only finish if the shutdown itself handed every piece of work back.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from remixq.examples import campaign_lines
from tests.support.chaos import STREAM_KNOBS, CampaignRun, Recorder, chaos_stack

pytestmark = pytest.mark.chaos

JOBS = 200
NO_SAFETY_NET = {
    "REMIXQ_CLAIM_LEASE": "600",
    "REMIXQ_RELAY_QUEUED_STALE": "600",
    "REMIXQ_RELAY_PENDING_GRACE": "600",
    "REMIXQ_RECONCILE_AFTER": "600",
}


def test_worker_sigterm_mid_flight(tmp_path: Path, reliability: Recorder) -> None:
    """SIGTERM reaches a worker while 16 submissions (0.8 s each) are in flight and more
    messages are prefetched. The warm shutdown finishes every submission it started and leaves
    no job claimed; the messages it had not started go back to Redis; a new worker finishes the
    campaign with no relay and no reconciler to help, each task accepted once."""
    knobs = {"submit_latency_ms": 800}
    env = {**NO_SAFETY_NET, "REMIXQ_SUBMIT_BATCH": "2"}
    with chaos_stack(tmp_path, knobs=knobs, env=env) as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "worker-sigterm")
        run.wait_accepted(0.3)
        started = time.monotonic()
        code = stack.stop("worker")
        run.notes["shutdown_s"] = round(time.monotonic() - started, 2)
        left = run.progress()
        run.notes["claimed_after_shutdown"] = left["submitting"]
        run.notes["queued_after_shutdown"] = left["queued"]
        stack.start("worker")
        run.fault_over()
        run.wait_final()
        figures = run.verify()
    assert code == 0
    assert figures["claimed_after_shutdown"] == 0  # nothing left half-submitted
    assert figures["queued_after_shutdown"] > 0  # the new worker really had work to do
    assert figures["submissions_per_task_max"] == 1  # nothing submitted twice
    reliability("worker-sigterm", "SIGTERM to a worker mid-flight", figures)


def test_receiver_sigterm_during_a_burst(tmp_path: Path, reliability: Recorder) -> None:
    """SIGTERM reaches the receiver during a webhook burst (results spread over 0.5-5.5 s).
    gunicorn stops accepting, answers
    the requests it holds and exits 0; a new receiver starts on the same port; the provider's
    retries deliver the rest, with no reconciler to help: every result arrives by webhook."""
    with chaos_stack(tmp_path, knobs=STREAM_KNOBS, env=NO_SAFETY_NET) as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "receiver-sigterm")
        run.wait_webhooks(60)
        started = time.monotonic()
        code = stack.stop("receiver")
        run.fault_injected()
        run.notes["shutdown_s"] = round(time.monotonic() - started, 2)
        stack.start("receiver")
        stack.wait_receiver()
        run.fault_over()
        run.wait_final()
        figures = run.verify()
    assert code == 0 and figures["webhooks_pending_at_fault"] > 0
    assert figures["get_response_calls"] == 0 and figures["recovered_by_reconciler"] == 0
    reliability("receiver-sigterm", "SIGTERM to the receiver during a burst", figures)
