"""What one holder of a leaked webhook URL can do to the ledger and the inbox, on both backends:
no more images than the job asked for (none once it is completed), no cost that is not a plausible
number, and a bounded number of bodies kept per task. Each attack of issue #13, failing."""

from __future__ import annotations

import json
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from remixq.cli.processes import wait_until
from remixq.config import load_settings
from remixq.db import make_engine
from remixq.ingest import Limits, ingest, ingest_batch
from remixq.ingest.postgres import PostgresStore
from remixq.models import Image, Job, WebhookEvent
from remixq.providers.runware.results import PollResult
from remixq.reconcile import apply_poll
from remixq.reports import campaign_cost
from tests.support.factories import make_job, new_job

COST = Decimal("0.06")


def item(task_uuid: str, image_uuid: str | None = None, cost: Any = 0.06) -> dict[str, Any]:
    return {
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "imageUUID": image_uuid or str(uuid.uuid4()),
        "imageURL": "http://127.0.0.1/img.jpg",
        "seed": 7,
        "cost": cost,
    }


def data(task_uuid: str, count: int) -> bytes:
    return json.dumps({"data": [item(task_uuid) for _ in range(count)]}).encode()


def send(session: Session, job: Job, body: bytes, **kwargs: Any) -> Any:
    return ingest(session, body=body, expected_task_uuid=job.task_uuid, **kwargs)


def images_of(session: Session, job: Job) -> int:
    query = select(func.count()).select_from(Image).where(Image.job_id == job.id)
    return session.scalar(query) or 0


def last_event(session: Session, task_uuid: str) -> WebhookEvent:
    query = select(WebhookEvent).where(WebhookEvent.task_uuid == task_uuid)
    event = session.scalars(query.order_by(WebhookEvent.id.desc())).first()
    assert event is not None
    return event


# --- no more results than asked for ----------------------------------------------------------


def test_10005_images_for_a_job_of_3_store_3(session: Session) -> None:
    """The attack of the issue (10,005 images stored for a job of numberResults 3), in a few
    bodies: only 3 are stored, the rest are kept in the inbox as rejected, with the reason."""
    job = make_job(session, number_results=3)

    flood = send(session, job, data(job.task_uuid, 10_000))
    assert (flood.inbox_status, flood.images_stored, flood.duplicates) == ("rejected", 0, 0)
    assert flood.message == (
        "10000 new images refused: the job asked for 3, has 0 and is submitted"
    )
    event = last_event(session, job.task_uuid)
    assert (event.status, event.error) == ("rejected", flood.message)

    two = data(job.task_uuid, 2)
    assert send(session, job, two).images_stored == 2
    # Two new images for one free slot: the body is refused whole, not its first image kept.
    over = send(session, job, data(job.task_uuid, 2))
    assert (over.inbox_status, over.images_stored) == ("rejected", 0)
    assert over.message.startswith("2 new images refused: the job asked for 3, has 2")
    last = send(session, job, data(job.task_uuid, 1))
    assert (last.inbox_status, last.images_stored, last.job_statuses) == (
        "processed",
        1,
        {job.task_uuid: "completed"},
    )

    session.refresh(job)
    assert (job.status, job.results_received, images_of(session, job)) == ("completed", 3, 3)
    assert campaign_cost(session, job.campaign_id or 0) == 3 * COST  # not 10,005 x

    # A redelivery of stored images stays a harmless duplicate, answered as before.
    again = send(session, job, two)
    assert (again.inbox_status, again.images_stored, again.duplicates) == ("processed", 0, 2)
    assert not again.message


def test_a_completed_job_takes_no_new_image(session: Session) -> None:
    job = make_job(session, number_results=3, status="completed")
    outcome = send(session, job, data(job.task_uuid, 1))
    assert (outcome.inbox_status, outcome.images_stored) == ("rejected", 0)
    assert outcome.message == "1 new images refused: the job asked for 3, has 0 and is completed"
    session.refresh(job)
    assert (job.status, job.results_received, images_of(session, job)) == ("completed", 0, 0)


def test_a_failed_job_keeps_its_late_images_within_the_cap(session: Session) -> None:
    """The provider charged for them: the ledger keeps them; the status stays failed."""
    job = make_job(session, number_results=2, status="failed")
    late = send(session, job, data(job.task_uuid, 2))
    assert (late.inbox_status, late.images_stored) == ("processed", 2)
    more = send(session, job, data(job.task_uuid, 1))
    assert (more.inbox_status, more.images_stored) == ("rejected", 0)
    assert more.message == "1 new images refused: the job asked for 2, has 2 and is failed"
    session.refresh(job)
    assert (job.status, job.results_received, images_of(session, job)) == ("failed", 2, 2)


def test_more_images_after_completion_are_refused(session: Session) -> None:
    job = make_job(session, number_results=1)
    assert send(session, job, data(job.task_uuid, 1)).job_statuses == {job.task_uuid: "completed"}
    late = send(session, job, json.dumps(item(job.task_uuid)).encode())  # a bare item
    assert (late.inbox_status, late.images_stored) == ("rejected", 0)
    assert "is completed" in late.message
    assert images_of(session, job) == 1


def test_a_refused_body_applies_nothing_of_itself(session: Session) -> None:
    """Its error is not applied either: a body is applied whole or not at all."""
    job = make_job(session, number_results=1)
    error = {"taskUUID": job.task_uuid, "code": "forged", "message": "m", "status": "error"}
    body = {"data": [item(job.task_uuid), item(job.task_uuid)], "errors": [error]}
    outcome = send(session, job, json.dumps(body).encode())
    assert outcome.inbox_status == "rejected"
    session.refresh(job)
    assert (job.status, job.error_code, job.results_received) == ("submitted", None, 0)


def test_the_cap_counts_distinct_images(session: Session) -> None:
    """The same image twice in one body is one image; an image stored for the job is none."""
    job = make_job(session, number_results=2)
    first = item(job.task_uuid)
    assert send(session, job, json.dumps(first).encode()).images_stored == 1
    twice = item(job.task_uuid)
    body = json.dumps({"data": [first, twice, twice]}).encode()
    outcome = send(session, job, body)
    assert (outcome.inbox_status, outcome.images_stored, outcome.duplicates) == ("processed", 1, 2)
    session.refresh(job)
    assert (job.status, job.results_received) == ("completed", 2)


def test_the_cap_holds_in_the_receivers_batches(engine: Engine) -> None:
    """The receiver's path (one statement per round on PostgreSQL): a batch of bodies about one
    job stores what they would one by one, and never more than the job asked for."""
    task = new_job(engine, number_results=3)
    deliveries = [(data(task, 2), task), (data(task, 2), task), (data(task, 1), task)]
    deliveries.append((data(task, 5_000), task))
    with engine.connect() as connection:
        outcomes = ingest_batch(connection, deliveries)
    assert [(o.inbox_status, o.images_stored) for o in outcomes] == [
        ("processed", 2),
        ("rejected", 0),
        ("processed", 1),
        ("rejected", 0),
    ]
    with Session(engine) as session:
        job = session.scalars(select(Job).where(Job.task_uuid == task)).one()
        assert (job.status, job.results_received, images_of(session, job)) == ("completed", 3, 3)
        statuses = session.scalars(
            select(WebhookEvent.status).where(WebhookEvent.task_uuid == task)
        ).all()
        assert sorted(statuses) == ["processed", "processed", "rejected", "rejected"]


# --- costs are numbers within a plausible range ----------------------------------------------


@pytest.mark.parametrize(
    ("cost", "shown"),
    [
        ('"1e5"', '"1e5"'),  # the attack: read as a 100,000 USD image
        ("1e5", "1E+5"),
        ("99999999", "99999999"),
        ("-1", "-1"),
        ("true", "true"),
    ],
)
def test_an_implausible_cost_is_rejected_and_stores_nothing(
    session: Session, cost: str, shown: str
) -> None:
    job = make_job(session, number_results=2)
    send(session, job, data(job.task_uuid, 1))
    raw = json.dumps(item(job.task_uuid, cost="COST")).replace('"COST"', cost).encode()
    outcome = send(session, job, raw)
    assert (outcome.inbox_status, outcome.images_stored) == ("rejected", 0)
    allowed = "a JSON number from 0 to 10 USD per image is allowed"
    assert outcome.message == f"cost: {shown} is refused: {allowed}"
    event = last_event(session, job.task_uuid)
    assert (event.status, event.error, event.body) == ("rejected", outcome.message, raw)
    session.refresh(job)
    assert (job.status, job.results_received, images_of(session, job)) == ("submitted", 1, 1)
    assert campaign_cost(session, job.campaign_id or 0) == COST  # 0.06, not 100,000.06


def test_the_ceiling_is_a_setting(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMIXQ_MAX_IMAGE_COST", "0.05")
    limits = Limits.of(load_settings())
    assert limits.max_image_cost == Decimal("0.05")
    job = make_job(session, number_results=1)
    refused = send(session, job, data(job.task_uuid, 1), limits=limits)
    assert (refused.inbox_status, refused.message) == (
        "rejected",
        "cost: 0.06 is refused: a JSON number from 0 to 0.05 USD per image is allowed",
    )
    assert send(session, job, data(job.task_uuid, 1)).images_stored == 1  # the default: 10


@pytest.mark.parametrize("value", ["0", "-1", "ten", "NaN"])
def test_a_ceiling_that_is_not_a_positive_amount_is_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMIXQ_MAX_IMAGE_COST", value)
    with pytest.raises(ValidationError, match="REMIXQ_MAX_IMAGE_COST"):
        load_settings()


def test_a_reconciler_poll_with_an_absurd_cost_is_rejected(session: Session) -> None:
    """getResponse answers take the webhook's reader: the reconciler cannot store it either."""
    job = make_job(session, number_results=1)
    absurd = {**item(job.task_uuid, cost=Decimal("1e5")), "status": "success"}
    outcome = apply_poll(session, PollResult(job.task_uuid, results=[absurd]), limits=Limits())
    assert outcome is not None
    assert (outcome.inbox_status, outcome.images_stored) == ("rejected", 0)
    event = last_event(session, job.task_uuid)
    assert (event.source, event.status) == ("poll", "rejected")
    assert images_of(session, job) == 0


# --- inbox growth is bounded -----------------------------------------------------------------

MIB = 1024 * 1024


def inbox_of(session: Session, task_uuid: str) -> tuple[int, int]:
    """The task's inbox rows, and the bytes of their bodies."""
    count, size = session.execute(
        select(func.count(), func.coalesce(func.sum(func.length(WebhookEvent.body)), 0)).where(
            WebhookEvent.task_uuid == task_uuid
        )
    ).one()
    return count, size


def test_bodies_beyond_the_cap_are_counted_not_stored(session: Session) -> None:
    """1 MiB invalid bodies with a valid token: the first `inbox_max_per_task` are kept, the
    rest counted on the job; a genuine result after them is still applied."""
    limits = Limits(inbox_max_per_task=3)
    job = make_job(session, number_results=1)
    junk = b"x" * MIB
    outcomes = [send(session, job, junk, limits=limits) for _ in range(6)]
    assert [(o.inbox_status, o.kept) for o in outcomes] == [("invalid", True)] * 3 + [
        ("invalid", False)
    ] * 3
    assert inbox_of(session, job.task_uuid) == (3, 3 * MIB)
    session.refresh(job)
    assert job.inbox_overflow == 3

    result = send(session, job, data(job.task_uuid, 1), limits=limits)
    assert (result.inbox_status, result.images_stored, result.kept) == ("processed", 1, False)
    session.refresh(job)
    assert (job.status, job.inbox_overflow, images_of(session, job)) == ("completed", 4, 1)
    assert inbox_of(session, job.task_uuid) == (3, 3 * MIB)


def test_the_cap_holds_on_the_receivers_path(engine: Engine) -> None:
    limits = Limits(inbox_max_per_task=2)
    task = new_job(engine, number_results=4)
    with engine.connect() as connection:
        for _ in range(4):
            (outcome,) = ingest_batch(connection, [(data(task, 1), task)], limits=limits)
            assert outcome.images_stored == 1
        (invalid,) = ingest_batch(connection, [(b"{not json", task)], limits=limits)
    assert (invalid.inbox_status, invalid.kept) == ("invalid", False)
    with Session(engine) as session:
        job = session.scalars(select(Job).where(Job.task_uuid == task)).one()
        assert (job.status, job.results_received, job.inbox_overflow) == ("completed", 4, 3)
        assert inbox_of(session, task)[0] == 2


def test_an_orphan_is_kept_whatever_the_count(session: Session) -> None:
    """No job has its task, so nothing could count it: it is kept, for its replay."""
    stranger = str(uuid.uuid4())
    limits = Limits(inbox_max_per_task=1)
    for _ in range(3):
        outcome = ingest(
            session, body=data(stranger, 1), expected_task_uuid=stranger, limits=limits
        )
        assert (outcome.inbox_status, outcome.kept) == ("orphan", True)
    assert inbox_of(session, stranger)[0] == 3


def test_the_statement_fits_psycopgs_parse_cache() -> None:
    """psycopg caches the parsing of a query only up to 4,096 characters (the receiver's hot
    path would parse it again for every batch)."""
    assert len(PostgresStore._STATEMENT) <= 4096


def test_a_redelivery_racing_its_original_is_a_duplicate(pg_url: str) -> None:
    """The original holds the job's row lock while the redelivery's statement waits for it:
    once the original commits, the redelivery finds its images stored (a duplicate), not two
    new images for a full job (the statement's own snapshot predates them)."""
    engine = make_engine(pg_url)
    try:
        task = new_job(engine, number_results=2)
        body = data(task, 2)
        answers: list[Any] = []
        with Session(engine) as original:
            assert ingest(original, body=body, expected_task_uuid=task).images_stored == 2
            with engine.connect() as connection:
                racer = threading.Thread(
                    target=lambda: answers.extend(ingest_batch(connection, [(body, task)]))
                )
                racer.start()
                wait_until(lambda: waiting_for_a_lock(engine), timeout=10)
                original.commit()
                racer.join(timeout=10)
        (redelivery,) = answers
        assert (redelivery.inbox_status, redelivery.images_stored, redelivery.duplicates) == (
            "processed",
            0,
            2,
        )
    finally:
        engine.dispose()


def waiting_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)
