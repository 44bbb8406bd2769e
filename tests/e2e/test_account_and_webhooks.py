"""The worker's part of a campaign with real processes: webhook URLs built at hand-off from the
worker's settings, and an account-level 402 that pauses a campaign until `remixq resume`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remixq.cli.processes import wait_until
from remixq.examples import campaign_lines
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


def submit_from_elsewhere(
    stack: Stack, lines: list[dict[str, object]], name: str, **env: str
) -> int:
    """`remixq submit` run by a process whose own settings differ from the deployment's."""
    path = stack.tmp / f"{name}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = subprocess.run(
        [sys.executable, "-m", "remixq.cli", "submit", str(path), "--campaign", name, "--json"],
        env={**os.environ, **stack.env, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["campaign_id"])


def test_webhooks_reach_the_receiver_whoever_submitted(tmp_path: Path) -> None:
    """Regression: a campaign submitted with another public URL and secret (a laptop) had every
    webhook sent to the wrong place or refused (401). The worker builds the URL at hand-off, so
    every webhook is accepted; no beat runs, so nothing but webhooks can complete the jobs."""
    with running_stack(tmp_path, backend="postgresql", database="e2e_p2_hooks") as stack:
        lines = campaign_lines(6)
        campaign_id = submit_from_elsewhere(
            stack,
            lines,
            "laptop",
            REMIXQ_PUBLIC_URL="http://laptop.invalid:9",
            REMIXQ_WEBHOOK_SECRET="another-secret",
        )
        jobs = stack.wait_final(campaign_id, timeout=60)
        stats = stack.sim_stats(tasks=False)

    assert {job.status for job in jobs} == {"completed"}
    assert stats["webhooks"]["failed"] == 0
    assert stats["webhooks"]["succeeded"] >= sum(job.number_results for job in jobs)
    assert stats["get_response_calls"] == 0


def test_an_account_refusal_pauses_the_campaign_until_resumed(tmp_path: Path) -> None:
    """The account runs out of credit after 4 accepted tasks: those complete, the rest wait
    pending (none failed), the campaign reads as paused in `remixq status`; after a top-up,
    `remixq resume` hands them over and the campaign completes, each taskUUID accepted once."""
    with running_stack(
        tmp_path,
        backend="postgresql",
        database="e2e_p2_account",
        sim_args=("--account-credit-tasks", "4"),
        env={"REMIXQ_SUBMIT_BATCH": "2"},
        worker_args=("--concurrency", "1"),
    ) as stack:
        campaign_id = stack.submit(campaign_lines(10), "credit")

        def paused_and_settled() -> bool:
            jobs = stack.jobs(campaign_id)
            return stack.campaign(campaign_id).paused_at is not None and all(
                job.status in ("completed", "pending") for job in jobs
            )

        wait_until(paused_and_settled, timeout=60, interval=0.2, what="the campaign to pause")
        jobs = stack.jobs(campaign_id)
        report = json.loads(stack.run_cli("status", "credit", "--json").stdout)
        table = stack.run_cli("status", "credit").stdout
        stack.set_faults(account_credit_tasks=None)  # topped up
        resumed = json.loads(stack.run_cli("resume", "credit", "--json").stdout)
        final = stack.wait_final(campaign_id, timeout=90)
        stats = stack.sim_stats()
        again = stack.run_cli("resume", "--json").stdout

    assert sum(job.status == "completed" for job in jobs) == 4
    assert sum(job.status == "pending" for job in jobs) == 6
    assert all(job.error_code is None for job in jobs)
    assert report["pause_reason"] and "insufficientCredits" in report["pause_reason"]
    assert report["paused_at"] is not None
    assert "paused since" in table
    handed = {"enqueued": True, "broker_error": None}
    assert resumed == {"campaigns": [campaign_id], "jobs": 6, **handed}
    assert {job.status for job in final} == {"completed"}
    for job in final:
        assert stats["tasks"][job.task_uuid]["accepted"] == 1
    assert stats["faults"]["insufficient_credits"] >= 1
    assert json.loads(again) == {"campaigns": [], "jobs": 0, **handed}
