"""Failover end to end, on real processes (simulator, receiver, a `remixq worker` with its
native pool, beat) on PostgreSQL: the simulator fails a share of the Runware `ideogram:4@2`
tasks with `timeoutProvider`; a campaign submitted with `--failover ideogram` ends with every
job's images from exactly one provider, the costs exact, and a late Runware result for a
failed-over job recorded but not charged twice in the budget view."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from remixq.cli.processes import wait_until
from remixq.models import Job
from remixq.pricing import PriceTable
from remixq.security import webhook_url
from tests.support.ideogram_requests import PNG
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

JOBS = 12
LINE = {
    "model": "ideogram:4@2",
    "width": 1024,
    "height": 1024,
    "numberResults": 2,
    # Inline: the native call sends the image's bytes (it would fetch a URL's).
    "inputs": {"referenceImages": [PNG]},
}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack(
        tmp_path,
        backend="postgresql",
        sim_args=("--latency-ms", "20"),
        env={
            "REMIXQ_RECONCILE_INTERVAL": "1",
            "REMIXQ_NATIVE_CONCURRENCY": "4",
            "REMIXQ_IDEOGRAM_RATE_LIMIT": "20",
            "REMIXQ_SUBMIT_MAX_RETRIES": "1",  # retriesExhausted after two attempts
        },
        beat=True,
    ) as running:
        yield running


def submit(stack: Stack, name: str, jobs: int = JOBS) -> int:
    path = stack.tmp / f"{name}.jsonl"
    lines = [{**LINE, "positivePrompt": f"a tea tin, {n}"} for n in range(jobs)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = json.loads(
        stack.run_cli(
            "submit", str(path), "--campaign", name, "--failover", "ideogram", "--json"
        ).stdout
    )
    assert out["jobs"] == jobs
    return int(out["campaign_id"])


def settled(stack: Stack, campaign_id: int) -> list[Job]:
    """Every Runware job completed, or failed over and its native re-run completed."""

    def done() -> bool:
        stack.check_alive()
        jobs = stack.jobs(campaign_id)
        reruns = {job.retry_of_id: job for job in jobs if job.retry_of_id is not None}
        for job in jobs:
            if job.provider != "runware":
                continue
            if job.status == "completed":
                continue
            rerun = reruns.get(job.id)
            if job.failover_state != "failed_over" or rerun is None:
                return False
            if rerun.status != "completed":
                return False
        return True

    try:
        wait_until(done, timeout=60, interval=0.5, what="every job done by one provider")
    except TimeoutError as exc:
        states = [
            (j.id, j.provider, j.status, j.error_code, j.failover_state, j.retry_of_id)
            for j in stack.jobs(campaign_id)
        ]
        raise AssertionError(f"{exc}: {states}") from None
    return stack.jobs(campaign_id)


def spend(stack: Stack, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(stack.run_cli("status", name, "--json").stdout)
    return found


def test_failed_runware_jobs_fail_over_once_each_with_exact_costs(stack: Stack) -> None:
    stack.set_faults(failure_rate=0.5)  # timeoutProvider, the simulator's default code
    campaign_id = submit(stack, "failover")
    jobs = settled(stack, campaign_id)

    runware = [job for job in jobs if job.provider == "runware"]
    reruns = {job.retry_of_id: job for job in jobs if job.provider == "ideogram"}
    assert len(runware) == JOBS
    failed_over = [job for job in runware if job.failover_state == "failed_over"]
    assert 0 < len(failed_over) < JOBS, "the simulator failed a share of the tasks"
    assert set(reruns) == {job.id for job in failed_over}  # one re-run each, no other
    for job in runware:
        rerun = reruns.get(job.id)
        if rerun is None:  # Runware did it
            assert job.status == "completed" and len(job.images) == 2
        else:  # Ideogram did it, Runware nothing
            assert (job.status, job.error_code, job.images) == ("failed", "timeoutProvider", [])
            assert "timeoutProvider" in (job.failover_reason or "")
            assert rerun.status == "completed" and len(rerun.images) == 2
            assert rerun.request["prompt"] == job.request["positivePrompt"]
            assert rerun.request["resolution"] == "1024x1024" and rerun.request["image"] == PNG

    stats = stack.sim_stats()
    ideogram = stats["providers"]["ideogram"]
    assert (ideogram["calls"], ideogram["charged"]) == (len(failed_over), len(failed_over))
    runware_spent = sum(
        (image.cost or Decimal(0) for job in runware for image in job.images), Decimal(0)
    )
    assert Decimal(stats["cost_total"]) == runware_spent  # failed tasks cost nothing
    native_spent = 2 * len(failed_over) * PriceTable.default().price("ideogram-v3-remix", "DEFAULT")
    assert Decimal(ideogram["cost"]) == native_spent
    report = spend(stack, "failover")
    assert Decimal(report["spent_usd"]) == runware_spent + native_spent

    # A late Runware result for a failed-over job: recorded (image and inbox), not charged
    # twice in the budget view.
    late = failed_over[0]
    image_uuid = str(uuid.uuid4())
    body = {  # one result item, as Runware posts it
        "taskType": "imageInference",
        "taskUUID": str(late.task_uuid),
        "imageUUID": image_uuid,
        "imageURL": f"{stack.sim_url}/images/{image_uuid}.jpg",
        "seed": 7,
        "cost": 0.08,
    }
    url = webhook_url(stack.receiver_url, b"e2e-secret", str(late.task_uuid))
    answer = requests.post(url, json=body, timeout=10)
    assert answer.status_code == 200, answer.text

    def recorded() -> bool:
        job = next(j for j in stack.jobs(campaign_id) if j.id == late.id)
        return [str(image.image_uuid) for image in job.images] == [image_uuid]

    wait_until(recorded, timeout=30, interval=0.2, what="the late result to be stored")
    after = spend(stack, "failover")
    assert Decimal(after["spent_usd"]) == runware_spent + native_spent
    # The failed-over attempt is listed as superseded by its re-run, saying why.
    shown = {job["task_uuid"]: job for job in after["superseded"]}
    assert shown[str(late.task_uuid)]["failover"]["state"] == "failed_over"
    assert shown[str(late.task_uuid)]["retried_as"] == str(reruns[late.id].task_uuid)
    assert [image["image_uuid"] for image in shown[str(late.task_uuid)]["images"]] == [image_uuid]


def test_a_submission_refused_until_its_retries_are_spent_fails_over(stack: Stack) -> None:
    """Every call to Runware is answered 503: each job ends `retriesExhausted` (its cause
    recorded) and stays failed while getResponse cannot confirm that Runware has nothing of
    it. Once getResponse answers (taskFailedOrNotFound: Runware never had the task), each job
    is re-run through Ideogram, once."""
    stack.set_faults(submit_503_rate=1.0)  # getResponse too: every POST /v1
    campaign_id = submit(stack, "exhausted", jobs=3)
    wait_until(
        lambda: all(j.status == "failed" for j in stack.jobs(campaign_id)),
        timeout=60,
        interval=0.2,
        what="every submission to give up",
    )
    log = stack.processes["worker"].log_path

    def unconfirmed() -> bool:
        return "getResponse failed; failover decided later" in log.read_text(errors="replace")

    wait_until(unconfirmed, timeout=30, interval=0.2, what="a failover round without getResponse")
    assert {j.failover_state for j in stack.jobs(campaign_id)} == {None}  # not without it
    stack.set_faults(submit_503_rate=0.0)
    jobs = settled(stack, campaign_id)
    runware = [job for job in jobs if job.provider == "runware"]
    reruns = {job.retry_of_id: job for job in jobs if job.provider == "ideogram"}
    assert len(runware) == 3 and set(reruns) == {job.id for job in runware}
    for job in runware:
        assert (job.status, job.error_code, job.images) == ("failed", "retriesExhausted", [])
        assert (job.error_message or "").endswith("[ServerError]")
        assert job.failover_state == "failed_over"
        assert "kept failing (ServerError)" in (job.failover_reason or "")
        assert reruns[job.id].status == "completed" and len(reruns[job.id].images) == 2
    stats = stack.sim_stats()
    assert all(
        stats["tasks"].get(str(job.task_uuid), {}).get("accepted", 0) == 0 for job in runware
    )
    assert stats["providers"]["ideogram"]["charged"] == 3
    assert Decimal(stats["cost_total"]) == 0
