"""Money never passes through float: a cost the provider writes with more digits than a float
holds survives every path into the raw JSON columns and the inbox, and back, on both backends."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq import reconcile
from remixq.db import json_dumps, json_loads
from remixq.ingest import ingest
from remixq.models import Image, Job, WebhookEvent
from remixq.providers.runware import RunwareClient
from remixq.providers.runware.testing import FakeTransport, reply
from tests.support.factories import make_job

COST = "0.1234567890123456789"  # 19 digits: a float keeps about 17


def _item(job: Job) -> str:
    return (
        f'{{"taskType":"imageInference","taskUUID":"{job.task_uuid}","status":"success",'
        f'"imageUUID":"{uuid.uuid4()}","cost":{COST}}}'
    )


def _raw_cost(session: Session, job: Job) -> object:
    session.expire_all()
    raw = session.scalars(select(Image.raw).where(Image.job_id == job.id)).one()
    return raw["cost"]


def test_the_encoder_writes_decimals_digit_for_digit() -> None:
    document = {"cost": Decimal(COST), "list": [Decimal("1E+2"), 1.5, "\x00text"]}
    text = json_dumps(document)
    assert f'"cost":{COST}' in text
    assert json_loads(text) == {
        "cost": Decimal(COST),
        "list": [Decimal("1E+2"), Decimal("1.5"), "\x00text"],
    }
    with pytest.raises(ValueError, match="NaN"):
        json_dumps({"cost": Decimal("NaN")})


def test_a_webhook_cost_survives_in_the_raw_column(session: Session) -> None:
    job = make_job(session)
    ingest(session, body=_item(job).encode(), expected_task_uuid=job.task_uuid)
    assert _raw_cost(session, job) == Decimal(COST)


def test_a_polled_cost_survives_in_the_raw_column_and_the_inbox(session: Session) -> None:
    job = make_job(session)
    answer = reply(200, f'{{"data":[{_item(job)}]}}')
    with RunwareClient("http://runware.test/v1", "k", session=FakeTransport(answer).session()) as c:
        poll = c.get_response(job.task_uuid)
    outcome = reconcile.apply_poll(session, poll)
    assert outcome is not None and outcome.images_stored == 1
    assert _raw_cost(session, job) == Decimal(COST)
    event = session.scalars(
        select(WebhookEvent).where(WebhookEvent.source == "poll").order_by(WebhookEvent.id.desc())
    ).first()
    assert event is not None and f'"cost":{COST}' in event.body.decode()


def test_a_request_read_back_from_its_column_is_sent_exactly(session: Session) -> None:
    job = make_job(session)
    job.request = {"model": job.model, "strength": Decimal(COST)}
    session.flush()
    session.expire_all()
    stored = session.scalars(select(Job.request).where(Job.id == job.id)).one()
    assert stored["strength"] == Decimal(COST)
    transport = FakeTransport(reply(200, {"data": [{"taskUUID": job.task_uuid}]}))
    with RunwareClient("http://runware.test/v1", "k", session=transport.session()) as client:
        client.submit([{**stored, "taskType": "imageInference", "taskUUID": job.task_uuid}])
    assert f'"strength":{COST}' in (transport.sent[0].body or b"").decode()
