"""Chaos: the provider misbehaves (throttling, lost, duplicated and early webhooks) while a
campaign runs on PostgreSQL and Redis with the real worker, beat, receiver and simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from remixq.examples import campaign_lines
from tests.support.chaos import CampaignRun, Recorder, chaos_stack

pytestmark = pytest.mark.chaos

JOBS = 200


def test_submissions_throttled(tmp_path: Path, reliability: Recorder) -> None:
    """10 % of submissions are answered 429 or 503 before anything is accepted. The worker
    releases the job, pauses every worker through the shared Redis limit, resubmits with the
    same taskUUIDs after a jittered backoff, and no job is lost, failed or paid twice."""
    knobs = {"submit_429_rate": 0.05, "submit_503_rate": 0.05}
    # Two tasks per request: a hundred requests or more, so that 10 % of them is a number.
    # (Each 429/503 pauses every worker for a second: more requests would mostly add pauses.)
    with chaos_stack(tmp_path, knobs=knobs, env={"REMIXQ_SUBMIT_BATCH": "2"}) as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "throttled")
        run.wait_final()
        figures = run.verify()
    faults = figures["faults"]
    assert faults.get("http_429", 0) + faults.get("http_503", 0) > 0
    assert figures["submissions_per_task_max"] > 1
    reliability("throttled", "10 % of submissions answered 429/503", figures)


def test_webhooks_dropped(tmp_path: Path, reliability: Recorder) -> None:
    """20 % of webhooks are never delivered, and 5 % of the tasks fail at the provider (their
    error webhook may be lost too). The reconciler asks getResponse about every submitted job
    without news, recovers each missing image and failure, and nothing else fails."""
    knobs = {"webhook_drop_rate": 0.2, "failure_rate": 0.05}
    with chaos_stack(tmp_path, knobs=knobs) as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "dropped")
        run.wait_final()
        figures = run.verify(failures_expected=True)
    assert figures["webhooks_dropped"] > 0
    assert figures["recovered_by_reconciler"] > 0 and figures["get_response_calls"] > 0
    reliability("dropped", "20 % of webhooks dropped (+5 % failed tasks)", figures)


def test_webhooks_duplicated(tmp_path: Path, reliability: Recorder) -> None:
    """Half of the webhooks are delivered twice, in either envelope (bare or {"data": [...]}).
    Every second copy is stored in the inbox and ignored: no image, no cent counted twice."""
    knobs = {"webhook_duplicate_rate": 0.5, "webhook_envelope": "mixed"}
    with chaos_stack(tmp_path, knobs=knobs) as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "duplicated")
        run.wait_final()
        figures = run.verify()
    assert figures["webhooks_duplicated"] > 0
    assert figures["duplicates_ignored"] >= figures["webhooks_duplicated"]
    reliability("duplicated", "50 % of webhooks delivered twice", figures)


def test_webhooks_before_acknowledgement(tmp_path: Path, reliability: Recorder) -> None:
    """Half of the tasks have their results posted before the submission is acknowledged (the
    others race their acknowledgement at near-zero latency). A result may move a job that is
    still `submitting`; the late acknowledgement is then a no-op, never a step back."""
    knobs = {"webhook_before_ack_rate": 0.5, "latency_ms": 5, "latency_jitter_ms": 5}
    with chaos_stack(tmp_path, knobs=knobs) as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "before-ack")
        run.wait_final()
        figures = run.verify()
    assert figures["faults"]["webhook_before_ack"] > 0
    reliability("before-ack", "webhooks before acknowledgements", figures)


def test_submissions_time_out(tmp_path: Path, reliability: Recorder) -> None:
    """5 % of submissions time out before anything is accepted and 10 % are accepted but
    answered too late (the ambiguous case: the worker cannot tell them apart). Both are retried
    with the same taskUUIDs; the provider answers conflictTaskUUID to the second kind, which
    counts as accepted, so no task is generated or charged twice."""
    knobs = {
        "submit_timeout_rate": 0.05,
        "submit_timeout_after_accept_rate": 0.1,
        "submit_timeout_s": 3,  # beyond the read timeout below
        # Results take ~4 s, as real generations do: no webhook settles the ambiguity before
        # the retry (a result that does arrive first makes the retry a no-op instead).
        "latency_ms": 4000,
        "latency_jitter_ms": 500,
    }
    env = {"REMIXQ_SUBMIT_BATCH": "2", "REMIXQ_HTTP_READ_TIMEOUT": "2"}
    with chaos_stack(tmp_path, knobs=knobs, env=env) as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "timeouts")
        run.wait_final()
        figures = run.verify()
    assert figures["faults"].get("submit_timeout_after_accept", 0) > 0
    assert figures["conflicts"] > 0
    reliability("timeouts", "15 % of submissions time out (10 % after acceptance)", figures)
