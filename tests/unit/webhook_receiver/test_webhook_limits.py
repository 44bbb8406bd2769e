"""A leaked webhook URL against the receiver (both backends): its holder cannot store more images
than the job asked for, an implausible cost, or more than a bounded number of bodies."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from remixq.models import Image, Job, WebhookEvent
from remixq.reports import campaign_cost
from tests.support.factories import make_job, new_job
from tests.support.webhooks import count, issued_url, receiver_client, result

MIB = 1024 * 1024


def images(task: str, number: int) -> bytes:
    return json.dumps({"data": [result(task) for _ in range(number)]}).encode()


def post(client: Any, task: str, body: bytes) -> Any:
    return client.post(issued_url(task), data=body, content_type="application/json")


def job_of(session: Session, task: str) -> Job:
    return session.scalars(select(Job).where(Job.task_uuid == task)).one()


def test_10005_images_for_a_job_of_3_store_3(engine: Engine, tmp_path: Path) -> None:
    task = new_job(engine, number_results=3)
    with receiver_client(engine, tmp_path) as client:
        floods = [post(client, task, images(task, 2_500)) for _ in range(4)]
        singles = [post(client, task, images(task, 1)) for _ in range(5)]
    assert [r.status_code for r in floods] == [400] * 4
    assert floods[0].json == {
        "status": "rejected",
        "images_stored": 0,
        "duplicates": 0,
        "message": "2500 new images refused: the job asked for 3, has 0 and is submitted",
    }
    assert [(r.status_code, r.json["images_stored"]) for r in singles] == [(200, 1)] * 3 + [
        (400, 0)
    ] * 2
    assert singles[-1].json["message"] == (
        "1 new images refused: the job asked for 3, has 3 and is completed"
    )
    with Session(engine) as session:
        job = job_of(session, task)
        assert (job.status, job.results_received) == ("completed", 3)
    assert count(engine, Image, job_id=job.id) == 3
    assert count(engine, WebhookEvent, task_uuid=task, status="rejected") == 6
    assert count(engine, WebhookEvent, task_uuid=task, status="processed") == 3


def test_a_string_cost_is_rejected(engine: Engine, tmp_path: Path) -> None:
    """The issue's attack: `"cost": "1e5"` stored as a 100,000 USD image."""
    task = new_job(engine, number_results=2)
    with receiver_client(engine, tmp_path) as client:
        assert post(client, task, images(task, 1)).status_code == 200
        forged = post(client, task, json.dumps({**result(task), "cost": "1e5"}).encode())
        huge = post(client, task, json.dumps({**result(task), "cost": 1e5}).encode())
    assert forged.status_code == 400 and forged.json["status"] == "rejected"
    assert forged.json["message"] == (
        'cost: "1e5" is refused: a JSON number from 0 to 10 USD per image is allowed'
    )
    assert huge.status_code == 400 and huge.json["status"] == "rejected"
    with Session(engine) as session:
        job = job_of(session, task)
        assert (job.status, job.results_received) == ("submitted", 1)
        total = session.scalar(select(func.sum(Image.cost)).where(Image.job_id == job.id))
        assert total == Decimal("0.06")


def test_the_ceiling_is_the_receivers_setting(engine: Engine, tmp_path: Path) -> None:
    task = new_job(engine, number_results=1)
    with receiver_client(engine, tmp_path, max_image_cost=Decimal("0.05")) as client:
        refused = post(client, task, json.dumps(result(task)).encode())  # costs 0.06
    assert refused.status_code == 400 and refused.json["status"] == "rejected"
    assert "from 0 to 0.05 USD" in refused.json["message"]
    assert count(engine, Image, job_id=_job_id(engine, task)) == 0


def _job_id(engine: Engine, task: str) -> int:
    with Session(engine) as session:
        return job_of(session, task).id


def test_1_mib_invalid_bodies_beyond_the_cap_are_counted_not_stored(
    engine: Engine, tmp_path: Path
) -> None:
    task = new_job(engine, number_results=1)
    junk = b"{" + b"x" * (MIB - 2) + b"}"  # 1 MiB, not JSON, with a valid token
    with receiver_client(engine, tmp_path, inbox_max_per_task=4) as client:
        answers = [post(client, task, junk) for _ in range(10)]
        genuine = post(client, task, json.dumps(result(task)).encode())
    assert [r.status_code for r in answers] == [400] * 10
    assert {r.json["status"] for r in answers} == {"invalid"}
    assert genuine.status_code == 200 and genuine.json["images_stored"] == 1  # still applied
    with Session(engine) as session:
        job = job_of(session, task)
        assert (job.status, job.inbox_overflow) == ("completed", 7)
        kept = session.execute(
            select(func.count(), func.sum(func.length(WebhookEvent.body))).where(
                WebhookEvent.task_uuid == task
            )
        ).one()
    assert tuple(kept) == (4, 4 * MIB)  # 4 MiB kept of the 10 MiB sent


def test_another_tasks_inbox_is_not_touched(engine: Engine, tmp_path: Path) -> None:
    """The cap is per task: one leaked URL fills its own task's inbox, no other."""
    task, other = new_job(engine), new_job(engine)
    with receiver_client(engine, tmp_path, inbox_max_per_task=2) as client:
        for _ in range(3):
            post(client, task, b"{not json")
        assert post(client, other, json.dumps(result(other)).encode()).status_code == 200
    assert count(engine, WebhookEvent, task_uuid=task) == 2
    assert count(engine, WebhookEvent, task_uuid=other) == 1


def test_a_campaigns_cost_stays_what_the_provider_charged(engine: Engine, tmp_path: Path) -> None:
    with Session(engine) as session, session.begin():
        job = make_job(session, number_results=2)
        task, campaign = job.task_uuid, job.campaign_id or 0
    with receiver_client(engine, tmp_path) as client:
        post(client, task, images(task, 2))
        post(client, task, json.dumps({**result(task), "cost": "1e5"}).encode())
        post(client, task, images(task, 3))
        post(client, task, json.dumps(result(task, str(uuid.uuid4()))).encode())
    with Session(engine) as session:
        assert campaign_cost(session, campaign) == Decimal("0.12")
