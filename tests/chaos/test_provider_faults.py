"""Chaos: the provider misbehaves (throttling, lost, duplicated and early webhooks) while a
campaign runs with the real worker, beat, receiver and simulator, on PostgreSQL and Redis and,
for throttling and lost webhooks, on the embedded default too (SQLite and its broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remixq.examples import campaign_lines
from tests.support.chaos import BACKENDS, CampaignRun, Recorder, chaos_stack

pytestmark = pytest.mark.chaos

JOBS = 200
# A failure code the client does not read as transient (the scenario below takes the
# simulator's default, `timeoutProvider`, which is).
PERMANENT_FAILURE = "inferenceError"


@pytest.mark.parametrize("backend", BACKENDS)
def test_submissions_throttled(tmp_path: Path, reliability: Recorder, backend: str) -> None:
    """10 % of submissions are answered 429 or 503 before anything is accepted. The worker
    releases the job, pauses every worker through the shared Redis limit (on the embedded
    default: its own process's limit), resubmits with the same taskUUIDs after a jittered
    backoff, and no job is lost, failed or paid twice."""
    knobs = {"submit_429_rate": 0.05, "submit_503_rate": 0.05}
    # Two tasks per request: a hundred requests or more, so that 10 % of them is a number.
    # (Each 429/503 pauses every worker for a second: more requests would mostly add pauses.)
    env = {"REMIXQ_SUBMIT_BATCH": "2"}
    with chaos_stack(tmp_path, backend=backend, knobs=knobs, env=env) as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "throttled")
        run.wait_final()
        figures = run.verify()
    faults = figures["faults"]
    assert faults.get("http_429", 0) + faults.get("http_503", 0) > 0
    assert figures["submissions_per_task_max"] > 1
    reliability("throttled", "10 % of submissions answered 429/503", figures)


@pytest.mark.parametrize("backend", BACKENDS)
def test_webhooks_dropped(tmp_path: Path, reliability: Recorder, backend: str) -> None:
    """20 % of webhooks are never delivered, and 5 % of the tasks fail at the provider with a
    permanent code (their error webhook may be lost too). With the default settings, the
    reconciler asks
    getResponse about every submitted job without news for REMIXQ_RECONCILE_AFTER, recovers
    each missing image and failure, and nothing else fails. Time to recover: how long the
    worst lost result waited, from its task's acceptance to the poll that stored it."""
    knobs = {"webhook_drop_rate": 0.2, "failure_rate": 0.05, "failure_code": PERMANENT_FAILURE}
    with chaos_stack(tmp_path, backend=backend, knobs=knobs, timing="defaults") as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "dropped")
        run.wait_final()
        figures = run.verify(failures_expected=True, failure_code=PERMANENT_FAILURE)
    assert figures["webhooks_dropped"] > 0
    assert figures["recovered_by_reconciler"] > 0 and figures["get_response_calls"] > 0
    # Each job asked about at most twice: the first check finds what was lost; no flood.
    assert figures["get_response_calls"] <= 2 * (figures["webhooks_dropped"] + figures["failed"]), (
        figures
    )
    reliability("dropped", "20 % of webhooks dropped (+5 % failed tasks)", figures)


def test_failed_task_with_a_transient_code_and_no_webhook(tmp_path: Path) -> None:
    """Every task fails at the provider with `timeoutProvider` (the simulator's default failure,
    the documented getResponse example of a failed task) and every webhook is lost: only the
    reconciler can learn the outcome, and each job must end failed with that code. The code is
    transient, so the first checks defer it; the provider still reporting it at the job's
    REMIXQ_RECONCILE_FINAL_CHECK makes it the task's outcome (before, it was deferred until the
    job expired)."""
    knobs = {"webhook_drop_rate": 1.0, "failure_rate": 1.0}
    with chaos_stack(tmp_path, knobs=knobs) as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(6), "transient-failure")
        run.wait_final(timeout=60)  # fast settings: a check every few seconds
        run.verify(failures_expected=True)


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
