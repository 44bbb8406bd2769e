"""The receiver under stress: its database goes away (503, so the provider retries, with nothing
half-written) and a burst of thousands of webhooks is answered within the provider's deadline."""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from remixq.cli.processes import wait_until
from remixq.examples import campaign_lines, demo_lines
from remixq.models import Image, Job, WebhookEvent
from remixq.security import webhook_url
from simulator.config import FaultKnobs
from tests.support.chaos import (
    STREAM_KNOBS,
    CampaignRun,
    Recorder,
    chaos_stack,
)
from tests.support.stack import Stack
from tests.support.tcp_proxy import pg_address, proxied, tcp_proxy

pytestmark = pytest.mark.chaos

# The simulator's (and Runware's documented) per-attempt webhook timeout.
WEBHOOK_DEADLINE_S = FaultKnobs().webhook_timeout_s
BURST_JOBS, BURST_RESULTS, BURST_REDELIVERIES = 400, 4, 400
CONNECTIONS = 64


def result_item(task_uuid: str, cost: str) -> dict[str, Any]:
    image_uuid = str(uuid.uuid4())
    return {
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "imageUUID": image_uuid,
        "imageURL": f"https://im.runware.ai/image/ws/2/ii/{image_uuid}.jpg",
        "seed": random.randint(0, 2**31 - 1),
        "cost": float(cost),
    }


def post(session: requests.Session, url: str, body: dict[str, Any]) -> tuple[int, float]:
    started = time.monotonic()
    response = session.post(url, json=body, timeout=30)
    return response.status_code, time.monotonic() - started


def issued_url(stack: Stack, job: Job) -> str:
    """The webhook URL the stack's worker hands the job over with (`Runtime.webhook_url_for`)."""
    secret = stack.env["REMIXQ_WEBHOOK_SECRET"].encode()
    return webhook_url(stack.receiver_url, secret, str(job.task_uuid))


def test_database_unavailable_answers_503(tmp_path: Path) -> None:
    """With its database unreachable the receiver answers 503 with Retry-After (so the
    provider retries), quickly, and writes nothing: a result refused during the outage is
    nowhere in the database afterwards, and its redelivery after the outage is stored once."""
    with chaos_stack(tmp_path, processes=(), beat=False) as (stack, _):
        campaign_id = stack.submit(demo_lines()[:2], "db-down")
        job = stack.jobs(campaign_id)[1]  # numberResults 2
        url = issued_url(stack, job)
        with tcp_proxy(pg_address(stack.env["REMIXQ_DATABASE_URL"])) as proxy:
            stack.start(
                "receiver",
                stack.commands["receiver"],
                REMIXQ_DATABASE_URL=proxied(stack.env["REMIXQ_DATABASE_URL"], proxy.port),
            )
            stack.wait_receiver()
            http = requests.Session()
            assert post(http, url, result_item(job.task_uuid, "0.06"))[0] == 200

            proxy.cut()
            refused, retried = result_item(job.task_uuid, "0.06"), None
            response = http.post(url, json=refused, timeout=30)
            assert response.status_code == 503
            assert response.headers["Retry-After"] and response.elapsed.total_seconds() < 1
            assert response.json()["error"] == "database_unavailable"
            unready = http.get(f"{stack.receiver_url}/readyz", timeout=30)
            assert unready.status_code == 503 and unready.json()["database"] != "ok"
            assert http.get(f"{stack.receiver_url}/healthz", timeout=30).status_code == 200
            retried = result_item(job.task_uuid, "0.06")
            assert post(http, url, retried)[0] == 503

            proxy.restore()
            wait_until(
                lambda: post(http, url, retried)[0] == 200, timeout=30, what="the database back"
            )
            assert post(http, url, retried)[0] == 200  # a redelivery: stored once

    with Session(stack.engine) as session:
        stored = set(session.scalars(select(Image.image_uuid)))
        bodies = [json.loads(body) for body in session.scalars(select(WebhookEvent.body))]
        finished = session.get(Job, job.id)
    assert refused["imageUUID"] not in stored
    assert all(body.get("imageUUID") != refused["imageUUID"] for body in bodies)
    assert retried["imageUUID"] in stored and len(stored) == 2
    assert finished is not None and finished.status == "completed"
    assert finished.results_received == 2


def test_database_outage_during_a_burst(tmp_path: Path, reliability: Recorder) -> None:
    """The receiver's database connection is cut for 5 s in the middle of a webhook burst
    (results spread over 0.5-5.5 s; open connections reset, new ones refused), with no
    reconciler to help. Every delivery
    during the outage is answered 503 within the provider's deadline and retried by it; every
    transaction cut half-way is rolled back; the campaign ends exact."""
    env = {"REMIXQ_RECONCILE_AFTER": "600"}
    with (
        chaos_stack(tmp_path, knobs=STREAM_KNOBS, processes=("simulator", "worker"), env=env) as (
            stack,
            _,
        ),
        tcp_proxy(pg_address(stack.env["REMIXQ_DATABASE_URL"])) as proxy,
    ):
        stack.start(
            "receiver",
            stack.commands["receiver"],
            REMIXQ_DATABASE_URL=proxied(stack.env["REMIXQ_DATABASE_URL"], proxy.port),
        )
        stack.wait_receiver()
        run = CampaignRun.submit(stack, campaign_lines(200), "db-outage")
        run.wait_webhooks(60)
        proxy.cut()
        run.fault_injected()
        job = stack.jobs(run.campaign_id)[0]
        probe = result_item(job.task_uuid, "0.06")
        status, probe_s = post(requests.Session(), issued_url(stack, job), probe)
        time.sleep(5)  # the outage itself
        proxy.restore()
        run.fault_over()
        run.notes |= {"probe_status": status, "probe_answer_s": round(probe_s, 3)}
        run.wait_final()
        figures = run.verify()
        with Session(stack.engine) as session:
            probe_stored = session.scalar(
                select(func.count()).where(Image.image_uuid == probe["imageUUID"])
            )
    assert status == 503 and probe_s < WEBHOOK_DEADLINE_S
    assert probe_stored == 0
    assert figures["webhooks_pending_at_fault"] > 0 and figures["webhook_attempts_failed"] > 0
    assert figures["get_response_calls"] == 0
    reliability("db-outage", "the receiver's database cut for 5 s during a burst", figures)


def test_burst_answered_within_the_deadline(tmp_path: Path, reliability: Recorder) -> None:
    """2,000 webhooks (1,600 results of 400 jobs and 400 redeliveries, both envelopes) arrive
    at once from 64 connections. Each is answered within the provider's 5 s deadline, so none
    would be retried; every image is stored once and the cost is exact."""
    lines = [
        {**line, "numberResults": BURST_RESULTS}
        for line in campaign_lines(BURST_JOBS)  # three models, all at 4 results
    ]
    with chaos_stack(tmp_path, processes=("receiver",), beat=False) as (stack, _):
        campaign_id = stack.submit(lines, "burst")
        jobs = stack.jobs(campaign_id)
        costs = ["0.03", "0.06", "0.09", "0.0013"]
        deliveries: list[tuple[str, dict[str, Any]]] = []
        for job in jobs:
            for _ in range(BURST_RESULTS):
                item = result_item(job.task_uuid, random.choice(costs))
                body = item if random.random() < 0.5 else {"data": [item]}
                deliveries.append((issued_url(stack, job), body))
        expected_cost = sum(
            (Decimal(str(_item(body)["cost"])) for _, body in deliveries), Decimal(0)
        )
        deliveries += random.sample(deliveries, BURST_REDELIVERIES)
        random.shuffle(deliveries)

        local = threading.local()

        def send(delivery: tuple[str, dict[str, Any]]) -> tuple[int, float]:
            if not hasattr(local, "http"):
                local.http = requests.Session()
            return post(local.http, *delivery)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
            answers = list(pool.map(send, deliveries))
        elapsed = time.monotonic() - started

        with Session(stack.engine) as session:
            images = session.scalar(select(func.count()).select_from(Image))
            distinct = session.scalar(select(func.count(Image.image_uuid.distinct())))
            cost = session.scalar(select(func.sum(Image.cost)))
            statuses = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
    latencies = sorted(seconds for _, seconds in answers)
    codes = {code for code, _ in answers}
    figures = {
        "jobs": BURST_JOBS,
        "completed": statuses.get("completed", 0),
        "failed": 0,
        "images": images,
        "images_expected": BURST_JOBS * BURST_RESULTS,
        "cost_usd": str(cost),
        "provider_cost_usd": str(expected_cost),
        "webhook_deliveries": len(deliveries),
        "duplicates_ignored": len(deliveries) - images,
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "latency_max_s": round(latencies[-1], 3),
        "burst_s": round(elapsed, 2),
        "webhooks_per_s": round(len(deliveries) / elapsed),
    }
    figures["injected"] = (
        f"{len(deliveries)} webhooks at once from {CONNECTIONS} connections; answered in "
        f"{figures['latency_p50_s']} s (p50), {figures['latency_p99_s']} s (p99), "
        f"{figures['latency_max_s']} s (max)"
    )
    assert codes == {200}, codes
    assert latencies[-1] < WEBHOOK_DEADLINE_S
    assert statuses == {"completed": BURST_JOBS}
    assert images == distinct == BURST_JOBS * BURST_RESULTS
    assert cost == expected_cost
    reliability("burst", "2,000 webhooks at once", figures)


def _item(body: dict[str, Any]) -> dict[str, Any]:
    return body["data"][0] if "data" in body else body
