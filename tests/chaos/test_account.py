"""Chaos: the account runs out of credit mid-campaign (every POST answered 402
insufficientCredits), is topped up, and the campaign is resumed: nothing fails, nothing is paid
twice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from remixq.cli.processes import wait_until
from remixq.examples import campaign_lines
from tests.support.chaos import DEADLINE, CampaignRun, Recorder, chaos_stack

pytestmark = pytest.mark.chaos

JOBS = 200
CREDIT_TASKS = 80


def test_out_of_credit_then_resumed(tmp_path: Path, reliability: Recorder) -> None:
    """The account's balance covers 80 of the 200 tasks; from then on the provider answers
    every submission 402 insufficientCredits. The refusal pauses the campaign (`remixq status`
    says so, with the provider's words) and every worker, and puts its unsubmitted jobs back to
    pending without an error or a spent attempt, while what was accepted completes. After a
    top-up through the simulator's /_control, `remixq resume` hands the rest over; every job
    completes, each taskUUID accepted once. Time to recover: from the resume to the last final
    job."""
    knobs = {"account_credit_tasks": CREDIT_TASKS}
    env = {"REMIXQ_SUBMIT_BATCH": "2"}
    with chaos_stack(tmp_path, knobs=knobs, env=env, timing="defaults") as (stack, _):
        run = CampaignRun.submit(stack, campaign_lines(JOBS), "out-of-credit")

        def paused_and_settled() -> bool:
            stack.check_alive()
            left = run.progress()
            return stack.campaign(run.campaign_id).paused_at is not None and set(left) <= {
                "completed",
                "pending",
            }

        wait_until(paused_and_settled, timeout=DEADLINE, interval=0.2, what="the pause")
        paused_at = time.monotonic()
        at_pause = run.progress()
        report = json.loads(stack.run_cli("status", run.name, "--json").stdout)
        table = stack.run_cli("status", run.name).stdout
        stack.set_faults(account_credit_tasks=None)  # topped up
        run.fault_over()  # recovery is timed from the moment the user runs `remixq resume`
        run.notes |= {
            "credit_tasks": CREDIT_TASKS,
            "completed_at_pause": at_pause["completed"],
            "pending_at_pause": at_pause["pending"],
            "paused_for_s": round(time.monotonic() - paused_at, 2),
        }
        resumed = json.loads(stack.run_cli("resume", run.name, "--json").stdout)
        run.wait_final()
        figures = run.verify()
    assert report["paused_at"] is not None
    assert "insufficientCredits" in (report["pause_reason"] or "")
    assert "paused since" in table
    # A request that starts within the balance is accepted whole (simulator A14), so requests
    # in flight together may take the account a little past it.
    assert figures["completed_at_pause"] >= CREDIT_TASKS
    assert figures["pending_at_pause"] == JOBS - figures["completed_at_pause"]
    assert resumed == {
        "campaigns": [run.campaign_id],
        "jobs": figures["pending_at_pause"],
        "enqueued": True,
        "broker_error": None,
    }
    assert figures["faults"]["insufficient_credits"] >= 1
    reliability("out-of-credit", "402 insufficientCredits mid-campaign, then resumed", figures)
