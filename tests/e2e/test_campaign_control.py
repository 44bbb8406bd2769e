"""Campaign control with real processes: a campaign cancelled while the worker submits it on the
simulator (generation takes seconds, so results land after the cancel)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from remixq.cli.processes import wait_until
from remixq.examples import campaign_lines
from remixq.states import OPEN
from tests.support.stack import running_stack

pytestmark = pytest.mark.e2e


def test_a_cancel_stops_submissions_while_accepted_jobs_still_land(tmp_path: Path) -> None:
    """One job per submission, 200 ms each, and 2.5 s of generation: the campaign is cancelled
    after a few submissions. No job is sent to the provider after the cancel (every task the
    simulator saw was claimed before it, and no cancelled job reached it), the relay of a beat
    running every half second resurrects none, and the results of the accepted jobs, arriving
    after the cancel, are stored with their cost."""
    with running_stack(
        tmp_path,
        backend="postgresql",
        database="e2e_control_cancel",
        sim_args=("--submit-latency-ms", "200", "--latency-ms", "2500"),
        env={
            "REMIXQ_SUBMIT_BATCH": "1",
            "REMIXQ_RELAY_INTERVAL": "0.5",
            "REMIXQ_RELAY_PENDING_GRACE": "0.5",
            "REMIXQ_RELAY_QUEUED_STALE": "1",
        },
        worker_args=("--concurrency", "1"),
        beat=True,
    ) as stack:
        campaign_id = stack.submit(campaign_lines(30), "cancelled")

        def some_submitted() -> bool:
            stack.check_alive()
            return sum(job.submitted_at is not None for job in stack.jobs(campaign_id)) >= 3

        wait_until(some_submitted, timeout=60, interval=0.05, what="a few submissions")
        answer = json.loads(stack.run_cli("cancel", "cancelled", "--json").stdout)
        # The cancel has committed by now. (Its `cancelled_at` is taken just before its
        # statement runs: a claim may commit in between, and is then cancelled with the rest.)
        committed = datetime.now(UTC)
        cancelled_at = stack.campaign(campaign_id).cancelled_at
        assert cancelled_at is not None and cancelled_at <= committed

        def settled() -> bool:
            stack.check_alive()
            return all(job.status not in OPEN for job in stack.jobs(campaign_id))

        wait_until(settled, timeout=60, interval=0.2, what="the accepted jobs to land")
        jobs = stack.jobs(campaign_id)
        stats = stack.sim_stats()
        summary = json.loads(stack.run_cli("campaigns", "--json").stdout)[0]
        exported = stack.run_cli("export", "cancelled", "--format", "jsonl").stdout.splitlines()

    landed = [job for job in jobs if job.status == "completed"]
    cancelled = [job for job in jobs if job.status == "cancelled"]
    # A job the worker was submitting when the cancel landed was cancelled too, then accepted
    # by the provider: it moved on and landed (one worker, one job per submission: at most one).
    assert 0 <= answer["cancelled"] - len(cancelled) <= 1 and cancelled
    assert len(landed) >= 3 and len(landed) + len(cancelled) == 30
    for job in cancelled:  # never sent to the provider, before or after the cancel
        assert job.task_uuid not in stats["tasks"] or stats["tasks"][job.task_uuid]["attempts"] == 0
        assert job.submitted_at is None and not job.images
    for job in landed:  # taken for submission before the cancel; results stored after it
        assert job.claimed_at is not None and job.claimed_at <= committed
        assert stats["tasks"][job.task_uuid]["accepted"] == 1
        assert len(job.images) == job.number_results
        assert all(image.cost is not None for image in job.images)
    assert any(image.created_at > cancelled_at for job in landed for image in job.images)
    assert stats["tasks_accepted"] == len(landed)
    assert summary["counts"] == {"cancelled": len(cancelled), "completed": len(landed)}
    assert summary["images"] == len(exported) == sum(len(job.images) for job in landed)
    assert Decimal(summary["cost_usd"]) == Decimal(stats["cost_total"]) > 0
