"""The pipeline end to end with real processes: campaign file → worker → simulator (async) →
webhooks → receiver → SQL, on PostgreSQL + Redis and on the embedded default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from remixq.examples import demo_lines
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["postgresql", "sqlite"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(
        tmp_path,
        backend=request.param,
        sim_args=(
            "--webhook-envelope",
            "mixed",
            "--webhook-duplicate-rate",
            "0.5",
            "--latency-ms",
            "20",
            "--latency-jitter-ms",
            "20",
        ),
    ) as running:
        yield running


def test_campaign_end_to_end(stack: Stack) -> None:
    lines = demo_lines()
    assert {line["model"] for line in lines} == {"ideogram:1@2", "ideogram:4@2", "ideogram:4@remix"}
    assert any(line.get("numberResults", 1) > 1 for line in lines)
    campaign_id = stack.submit(lines, "e2e")
    jobs = stack.wait_final(campaign_id)

    # A failing task: the provider fails every generation while this campaign is submitted.
    stack.set_faults(failure_rate=1.0)
    failing_id = stack.submit(lines[:1], "e2e-failing")
    (failed,) = stack.wait_final(failing_id)
    stack.set_faults(failure_rate=0.0)

    assert [job.status for job in jobs] == ["completed"] * len(lines)
    for job, line in zip(jobs, lines, strict=True):
        assert job.number_results == line.get("numberResults", 1)
        assert job.results_received == len(job.images) == job.number_results
        assert all(image.cost is not None and image.seed is not None for image in job.images)
        assert job.request["deliveryMethod"] == "async" and job.request["includeCost"] is True
    assert failed.status == "failed" and failed.error_code and not failed.images

    image_uuids = [image.image_uuid for job in jobs for image in job.images]
    assert len(image_uuids) == len(set(image_uuids)) == sum(j.number_results for j in jobs)

    stats = stack.sim_stats()
    assert stats["webhooks"]["duplicated"] > 0  # duplicates were really delivered
    for job in [*jobs, failed]:
        assert stats["tasks"][job.task_uuid]["accepted"] == 1, job.task_uuid
    stored_cost = sum(
        (image.cost or Decimal(0) for job in jobs for image in job.images), Decimal(0)
    )
    assert stored_cost == Decimal(stats["cost_total"])

    report = json.loads(stack.run_cli("status", "e2e", "--json").stdout)
    assert Decimal(report["cost_usd"]) == stored_cost
    assert {job["status"] for job in report["jobs"]} == {"completed"}
    assert sum(len(job["images"]) for job in report["jobs"]) == len(image_uuids)
    failing = stack.run_cli("status", "e2e-failing", "--json", check=False)
    assert failing.returncode == 3  # the latest attempt of a job failed
    failed_report = json.loads(failing.stdout)
    assert failed_report["jobs"][0]["status"] == "failed"
    assert failed_report["jobs"][0]["error"]["code"] == failed.error_code
