"""What the benchmarks feed the system: jobs stored as a producer would have left them, and the
webhooks Runware would send for them (bare items, `data`-wrapped ones, several images in one
body, exact redeliveries), each on its job's own tokenised URL."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bench.loadgen import Request
from remixq.examples import demo_lines
from remixq.models import Campaign, Job
from remixq.security import webhook_url

# numberResults of successive jobs: mostly single images, some sets (mean 1.9).
RESULTS_CYCLE = (1, 2, 1, 3, 1, 4, 2, 1, 2, 2)


@dataclass(frozen=True)
class StoredJob:
    job_id: int
    task_uuid: str
    number_results: int


_COLUMNS = (
    "campaign_id",
    "task_uuid",
    "provider",
    "model",
    "request",
    "number_results",
    "results_received",
    "status",
    "attempts",
    "created_at",
    "updated_at",
    "submitted_at",
)


def insert_jobs(engine: Engine, count: int, *, status: str = "submitted") -> list[StoredJob]:
    """`count` jobs of one campaign, with realistic stored requests, in one transaction on
    PostgreSQL, written with COPY (a minute's corpus of benchmark 1b is ~90,000 jobs: through
    the ORM's executemany that took half a minute)."""
    examples = demo_lines()
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        campaign = Campaign(name=f"bench-{uuid.uuid4().hex[:8]}", source="bench")
        session.add(campaign)
        session.flush()
        numbers: dict[str, int] = {}
        cursor = session.connection().connection.driver_connection.cursor()
        with cursor.copy(f"COPY jobs ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for index in range(count):
                task_uuid = str(uuid.uuid4())
                number = RESULTS_CYCLE[index % len(RESULTS_CYCLE)]
                request = {
                    **examples[index % len(examples)],
                    "taskType": "imageInference",
                    "taskUUID": task_uuid,
                    "numberResults": number,
                    "deliveryMethod": "async",
                    "includeCost": True,
                }
                numbers[task_uuid] = number
                copy.write_row(
                    (campaign.id, task_uuid, "runware", request["model"], json.dumps(request),
                     number, 0, status, 1, now, now, now)
                )  # fmt: skip
        rows = session.execute(
            select(Job.id, Job.task_uuid).where(Job.campaign_id == campaign.id).order_by(Job.id)
        )
        return [StoredJob(job_id, task_uuid, numbers[task_uuid]) for job_id, task_uuid in rows]


@dataclass
class Corpus:
    requests: list[Request]
    distinct_images: int
    jobs: int
    shapes: dict[str, int]


def _item(task_uuid: str, rng: random.Random) -> dict[str, Any]:
    # Mixed with the task's own UUID: two corpora drawn with the same seed share no image.
    bits = rng.getrandbits(128) ^ uuid.UUID(task_uuid).int
    image_uuid = str(uuid.UUID(int=bits, version=4))
    return {
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "imageUUID": image_uuid,
        "imageURL": f"http://127.0.0.1:8700/images/{image_uuid}.jpg",
        "seed": rng.randrange(1, 2**31),
        "NSFWContent": False,
        "cost": 0.06,
    }


def webhook_path(secret: bytes, task_uuid: str) -> str:
    return webhook_url("", secret, task_uuid)  # the path of the URL the job would be given


def webhooks_for(
    jobs: list[StoredJob], secret: bytes, *, duplicate_rate: float = 0.1, seed: int = 6
) -> Corpus:
    """Every result of every job, delivered in one of the documented shapes, in shuffled order;
    a share of the deliveries is sent twice (byte for byte, as a retried webhook is)."""
    rng = random.Random(seed)
    deliveries: list[Request] = []
    shapes = {"bare": 0, "data": 0, "data-multi": 0, "duplicate": 0}
    distinct = 0
    for job in jobs:
        path = webhook_path(secret, job.task_uuid)
        items = [_item(job.task_uuid, rng) for _ in range(job.number_results)]
        distinct += len(items)
        if len(items) > 1 and rng.random() < 0.2:
            shapes["data-multi"] += 1
            deliveries.append(Request(path, json.dumps({"data": items}).encode()))
            continue
        for item in items:
            if rng.random() < 0.5:
                shapes["bare"] += 1
                deliveries.append(Request(path, json.dumps(item).encode()))
            else:
                shapes["data"] += 1
                deliveries.append(Request(path, json.dumps({"data": [item]}).encode()))
    duplicates = [d for d in deliveries if rng.random() < duplicate_rate]
    shapes["duplicate"] = len(duplicates)
    requests = deliveries + duplicates
    rng.shuffle(requests)
    return Corpus(requests, distinct, len(jobs), shapes)


def jobs_for_webhooks(target: int, duplicate_rate: float = 0.1) -> int:
    """How many jobs give about `target` webhook posts (at least that many, roughly)."""
    per_job = sum(RESULTS_CYCLE) / len(RESULTS_CYCLE) * 0.93 * (1 + duplicate_rate)
    return int(target / per_job) + 1
