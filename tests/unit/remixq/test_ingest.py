"""Ingestion of webhook bodies on both backends: idempotent, exact, and safe with bad input."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from remixq.ingest import ingest
from remixq.models import Image, Job, WebhookEvent
from remixq.reports import campaign_cost
from tests.support.factories import make_job


def result(job: Job, *, cost: str = "0.06", image_uuid: str | None = None) -> dict[str, Any]:
    return {
        "taskType": "imageInference",
        "taskUUID": job.task_uuid,
        "imageUUID": image_uuid or str(uuid.uuid4()),
        "imageURL": "http://127.0.0.1/img.jpg",
        "seed": 1676511258,
        "cost": Decimal(cost),
    }


def body(payload: Any) -> bytes:
    return json.dumps(payload, default=lambda d: float(d) if isinstance(d, Decimal) else d).encode()


def images_of(session: Session, job: Job) -> int:
    return (
        session.scalar(select(func.count()).select_from(Image).where(Image.job_id == job.id)) or 0
    )


def test_bare_and_data_wrapped_results_complete_the_job(session: Session) -> None:
    job = make_job(session, number_results=2)
    first = ingest(session, body=body(result(job)), expected_task_uuid=job.task_uuid)
    assert (first.inbox_status, first.images_stored) == ("processed", 1)
    session.refresh(job)
    assert (job.status, job.results_received) == ("submitted", 1)
    second = ingest(
        session, body=body({"data": [result(job, cost="0.0013")]}), expected_task_uuid=job.task_uuid
    )
    assert second.images_stored == 1
    session.refresh(job)
    assert (job.status, job.results_received) == ("completed", 2)
    assert job.finished_at is not None
    assert campaign_cost(session, job.campaign_id or 0) == Decimal("0.0613")


def test_redelivery_is_a_no_op(session: Session) -> None:
    job = make_job(session, number_results=2)
    item = result(job)
    ingest(session, body=body(item), expected_task_uuid=job.task_uuid)
    again = ingest(session, body=body({"data": [item]}), expected_task_uuid=job.task_uuid)
    assert (again.images_stored, again.duplicates) == (0, 1)
    session.refresh(job)
    assert (job.status, job.results_received, images_of(session, job)) == ("submitted", 1, 1)


def test_result_before_the_acknowledgement(session: Session) -> None:
    job = make_job(session, number_results=1, status="submitting")
    ingest(session, body=body(result(job)), expected_task_uuid=job.task_uuid)
    session.refresh(job)
    assert job.status == "completed"


def test_error_envelope_fails_the_job_with_the_provider_code(session: Session) -> None:
    job = make_job(session, number_results=3)
    ingest(session, body=body(result(job)), expected_task_uuid=job.task_uuid)
    error = {
        "errors": [
            {
                "code": "timeoutProvider",
                "message": "provider timed out",
                "taskUUID": job.task_uuid,
                "status": "error",
            }
        ]
    }
    outcome = ingest(session, body=body(error), expected_task_uuid=job.task_uuid)
    assert outcome.inbox_status == "processed"
    session.refresh(job)
    assert (job.status, job.error_code, job.results_received) == ("failed", "timeoutProvider", 1)


def test_unknown_task_is_an_orphan_kept_in_the_inbox(session: Session) -> None:
    stranger = str(uuid.uuid4())
    payload = {"taskUUID": stranger, "imageUUID": str(uuid.uuid4()), "cost": 0.06}
    outcome = ingest(session, body=body(payload), expected_task_uuid=stranger)
    assert outcome.inbox_status == "orphan"
    event = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id.desc())).first()
    assert event is not None and event.status == "orphan" and event.task_uuid == stranger


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'{"data": "x"}',
        b'{"taskUUID": "not-a-uuid", "imageUUID": "x"}',
        b'{"data": [{"imageUUID": "7f1e3b4e-7c61-4c84-9d1e-0c4c2f4f7a11"}]}',
        b'{"taskUUID": "TASK", "imageUUID": "7f1e3b4e-7c61-4c84-9d1e-0c4c2f4f7a11", "cost": NaN}',
        b'{"taskUUID": "TASK", "imageUUID": "7f1e3b4e-7c61-4c84-9d1e-0c4c2f4f7a11", "seed": 1e99}',
        (b'{"taskUUID": "TASK", "imageUUID": "7f1e3b4e-7c61-4c84-9d1e-0c4c2f4f7a11", "seed": '
        b"99999999999999999999}"),
    ],
)
def test_bad_bodies_are_kept_as_invalid_and_store_no_image(session: Session, raw: bytes) -> None:
    job = make_job(session, number_results=1)
    raw = raw.replace(b"TASK", job.task_uuid.encode())
    outcome = ingest(session, body=raw, expected_task_uuid=job.task_uuid)
    assert outcome.inbox_status == "invalid", outcome
    assert images_of(session, job) == 0
    session.refresh(job)
    assert (job.status, job.results_received) == ("submitted", 0)
    event = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id.desc())).first()
    assert event is not None and event.body == raw and event.status == "invalid"


def test_an_item_about_another_task_is_rejected(session: Session) -> None:
    job, other = make_job(session), make_job(session)
    outcome = ingest(session, body=body(result(other)), expected_task_uuid=job.task_uuid)
    assert outcome.inbox_status == "rejected"
    assert images_of(session, other) == 0


def test_costs_are_exact_decimals(session: Session) -> None:
    job = make_job(session, number_results=20)
    for _ in range(20):
        ingest(session, body=body(result(job, cost="0.0013")), expected_task_uuid=job.task_uuid)
    assert campaign_cost(session, job.campaign_id or 0) == Decimal("0.026")


def test_an_item_still_in_progress_changes_nothing_whatever_its_word(session: Session) -> None:
    job = make_job(session, number_results=1)
    for word in ("processing", "queued", "a-word-not-known-yet"):
        item = {"taskUUID": job.task_uuid, "status": word}
        outcome = ingest(session, body=body({"data": [item]}), expected_task_uuid=job.task_uuid)
        assert (outcome.inbox_status, outcome.images_stored) == ("processed", 0)
    session.refresh(job)
    assert (job.status, job.results_received) == ("submitted", 0)


def _error_body(job: Job, code: str) -> bytes:
    item = {"code": code, "message": f"{code} happened", "taskUUID": job.task_uuid}
    return body({"errors": [{**item, "status": "error"}]})


def test_a_refused_error_leaves_the_stored_error_code_alone(session: Session) -> None:
    """A forged (or late) error about a completed job is refused, and writes nothing either."""
    job = make_job(session, number_results=1)
    ingest(session, body=body(result(job)), expected_task_uuid=job.task_uuid)
    outcome = ingest(session, body=_error_body(job, "forged"), expected_task_uuid=job.task_uuid)
    assert outcome.message  # the refusal, on the inbox row
    session.refresh(job)
    assert (job.status, job.error_code, job.error_message) == ("completed", None, None)


def test_a_second_error_does_not_replace_the_first(session: Session) -> None:
    job = make_job(session, number_results=1)
    ingest(session, body=_error_body(job, "first"), expected_task_uuid=job.task_uuid)
    ingest(session, body=_error_body(job, "second"), expected_task_uuid=job.task_uuid)
    session.refresh(job)
    assert (job.status, job.error_code) == ("failed", "first")
