"""The API end to end with real processes (simulator, receiver, worker on PostgreSQL + Redis):
a campaign created over HTTP completes on the simulator, its images are paged and exported
over HTTP; a campaign cancelled over HTTP with jobs in flight submits nothing more, and what the
provider had accepted still lands."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq.cli.processes import wait_until
from remixq.examples import campaign_lines, demo_lines
from remixq.models import Job
from tests.support.api import Api
from tests.support.stack import Stack, running_stack
from worker.names import QUEUE

pytestmark = pytest.mark.e2e


def api_of(stack: Stack) -> Api:
    made = json.loads(stack.run_cli("apikey", "create", "e2e", "--json").stdout)
    return Api(stack.receiver_url, made["key"])


def test_a_campaign_created_over_http_completes_and_is_paged_and_exported(
    tmp_path: Path,
) -> None:
    with running_stack(tmp_path, backend="postgresql", database="api_e2e") as stack:
        api = api_of(stack)
        lines = demo_lines()
        created = api.post("/campaigns", json={"name": "over-http", "jobs": lines})
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]

        def completed() -> bool:
            stack.check_alive()
            counts = api.get(f"/campaigns/{campaign_id}").json()["counts"]
            return counts == {"completed": len(lines)}

        wait_until(completed, timeout=90, interval=0.3, what="the campaign to complete")
        campaign = api.get(f"/campaigns/{campaign_id}").json()
        expected = sum(line.get("numberResults", 1) for line in lines)
        assert campaign["images"] == expected and campaign["finished_at"] is not None
        assert Decimal(campaign["cost_usd"]) == Decimal(stack.sim_stats()["cost_total"])

        images = api.walk(f"/campaigns/{campaign_id}/images", limit=2)
        jobs = stack.jobs(campaign_id)
        stored = {image.image_uuid for job in jobs for image in job.images}
        order = [(i["job_id"], i["id"]) for i in images]
        assert order == sorted(order)  # by job, then image: no page repeats or skips
        assert len(images) == len({i["image_uuid"] for i in images}) == expected
        assert {i["image_uuid"] for i in images} == stored
        assert sum((Decimal(i["cost_usd"]) for i in images), Decimal(0)) == Decimal(
            campaign["cost_usd"]
        )

        exported = api.get(f"/campaigns/{campaign_id}/export")
        assert exported.status_code == 200
        assert exported.headers["Content-Type"].startswith("application/x-ndjson")
        rows = [json.loads(line) for line in exported.text.splitlines()]
        assert {row["image_uuid"] for row in rows} == stored
        by_task = {str(job.task_uuid): job for job in jobs}
        for row in rows:
            job = by_task[row["task_uuid"]]
            assert row["campaign"] == "over-http" and row["model"] == job.model
            assert row["prompt"] == job.request["positivePrompt"]
            assert row["seed"] is not None and row["cost_usd"] is not None


def test_cancel_with_jobs_in_flight_submits_nothing_more_and_keeps_late_results(
    tmp_path: Path,
) -> None:
    with running_stack(
        tmp_path,
        backend="postgresql",
        database="api_e2e",
        sim_args=("--submit-latency-ms", "150", "--latency-ms", "1500"),
        worker_args=("--concurrency", "2"),
        env={"REMIXQ_SUBMIT_BATCH": "1"},
    ) as stack:
        api = api_of(stack)
        lines = campaign_lines(40)
        created = api.post("/campaigns", json={"name": "cancelled", "jobs": lines})
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]

        def some_accepted() -> bool:
            return any(job.status == "submitted" for job in stack.jobs(campaign_id))

        wait_until(some_accepted, timeout=60, interval=0.05, what="a job to be accepted")
        answer = api.post(f"/campaigns/{campaign_id}/cancel")
        assert answer.status_code == 200, answer.text
        assert answer.json()["jobs"] > 0 and answer.json()["campaign"]["cancelled_at"]
        with Session(stack.engine) as session:
            never_claimed = set(
                session.scalars(
                    select(Job.task_uuid).where(
                        Job.campaign_id == campaign_id,
                        Job.status == "cancelled",
                        Job.attempts == 0,
                    )
                )
            )
        assert never_claimed, "every job was claimed before the cancel"

        def accepted() -> set[str]:
            tasks = stack.sim_stats()["tasks"]
            jobs = {str(job.task_uuid) for job in stack.jobs(campaign_id)}
            return {t for t, s in tasks.items() if s["accepted"] and t in jobs}

        def settled() -> bool:
            stack.check_alive()
            landed = {
                str(job.task_uuid)
                for job in stack.jobs(campaign_id)
                if job.results_received == job.number_results
            }
            return accepted() <= landed

        # Whatever the provider accepted lands, images and cost, although the campaign is
        # cancelled; nothing cancelled before its claim is ever submitted.
        wait_until(settled, timeout=60, interval=0.3, what="the accepted jobs' results")
        first = accepted()
        assert first and not first & {str(t) for t in never_claimed}
        campaign = api.get(f"/campaigns/{campaign_id}").json()
        assert campaign["images"] >= len(first) and Decimal(campaign["cost_usd"]) > 0
        assert len(first) < len(lines)
        # The queue still held messages for the cancelled jobs: once the worker has taken them
        # all (and submitted none), the provider has accepted nothing more.
        wait_until(
            lambda: stack.broker_holds_nothing(QUEUE),
            timeout=60,
            interval=0.5,
            what="the submission queue to drain",
        )
        assert accepted() == first
