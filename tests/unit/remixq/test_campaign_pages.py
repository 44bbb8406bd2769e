"""Campaign summaries, keyset pages and the export (`remixq.reports`) on both backends: exact
totals from aggregates in a constant number of queries, pages that see every row once, an export
in constant memory, and (PostgreSQL) plans that walk an index rather than the whole table."""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from remixq.control import cancel_campaign, retry_campaign
from remixq.errors import InvalidInput, UnknownCampaign
from remixq.models import Image, Job
from remixq.reports import (
    EXPORT_FIELDS,
    campaign_report,
    campaign_summaries,
    campaign_summary,
    export_rows,
    images_page,
    job_views,
    jobs_page,
    report_head,
)
from tests.support.factories import bulk_campaign, make_campaign


def add_image(session: Session, job: Job, cost: str = "0.04") -> Image:
    image = Image(
        job_id=job.id,
        image_uuid=str(uuid.uuid4()),
        image_url=f"https://im.example/{uuid.uuid4()}.jpg",
        seed=42,
        nsfw=False,
        cost=Decimal(cost),
        raw={},
    )
    session.add(image)
    session.flush()
    return image


def jobs_of(session: Session, campaign_id: int) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.campaign_id == campaign_id).order_by(Job.id)))


@contextmanager
def statements(session: Session) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements the session's connection sends while the block runs."""
    sent: list[tuple[str, Any]] = []
    connection = session.connection()

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(connection, "before_cursor_execute", record)


def test_a_summary_counts_latest_attempts_and_costs_every_one(session: Session) -> None:
    campaign = make_campaign(session, "completed", "failed", "submitted")
    completed, failed, submitted = jobs_of(session, campaign.id)
    add_image(session, completed, "0.04")
    add_image(session, failed, "0.02")  # a partial result of the attempt retried below
    (retry_id,) = retry_campaign(session, campaign.id)

    summary = campaign_summary(session, campaign.id)

    assert summary is not None
    assert summary.counts == {"completed": 1, "pending": 1, "submitted": 1}
    assert (summary.images, summary.cost_usd, summary.superseded) == (1, Decimal("0.06"), 1)
    assert summary.finished_at is None and summary.outcome == "running"
    document = summary.to_json()
    assert document["cost_usd"] == "0.06" and document["counts"] == summary.counts
    assert document["created_at"] == summary.created_at.isoformat()
    assert {"id", "name", "images", "paused", "pause_reason", "cancelled_at"} <= set(document)
    assert campaign_summary(session, 987654321) is None
    assert retry_id > submitted.id


def test_a_settled_campaign_has_finished(session: Session) -> None:
    campaign = make_campaign(session, "pending", "completed")
    cancel_campaign(session, campaign.id)

    summary = campaign_summary(session, campaign.id)

    assert summary is not None and summary.finished_at == summary.cancelled_at
    assert summary.to_json()["outcome"] == "cancelled"


def test_summaries_page_by_id_in_a_constant_number_of_queries(session: Session) -> None:
    made = [make_campaign(session, "completed", "pending") for _ in range(5)]
    for campaign in made:
        add_image(session, jobs_of(session, campaign.id)[0])
    before = made[0].id - 1

    with statements(session) as few:
        two = campaign_summaries(session, after_id=before, limit=2)
    with statements(session) as many:
        five = campaign_summaries(session, after_id=before, limit=5)

    assert [s.id for s in two] == [c.id for c in made[:2]]
    assert [s.id for s in five] == [c.id for c in made]
    assert len(few) == len(many) == 4  # campaigns, jobs by status, images, spend (remixq.budgets)
    assert all(s.counts == {"completed": 1, "pending": 1} and s.images == 1 for s in five)
    rest = campaign_summaries(session, after_id=made[2].id)
    assert [s.id for s in rest][:2] == [made[3].id, made[4].id]


def test_jobs_pages_by_id_and_status(session: Session) -> None:
    campaign = make_campaign(session, *(["completed", "failed"] * 5))
    ids = [job.id for job in jobs_of(session, campaign.id)]

    first = jobs_page(session, campaign.id, limit=4)
    second = jobs_page(session, campaign.id, after_id=first[-1].id, limit=4)
    failed = jobs_page(session, campaign.id, status="failed", limit=100)

    assert [job.id for job in first + second] == ids[:8]
    assert [job.id for job in failed] == ids[1::2]
    assert jobs_page(session, campaign.id, after_id=ids[-1]) == []
    with pytest.raises(InvalidInput, match="status: 'lost' is not allowed; one of pending"):
        jobs_page(session, campaign.id, status="lost")
    with pytest.raises(InvalidInput, match="limit: 0 is not allowed; a whole number from 1"):
        jobs_page(session, campaign.id, limit=0)


def test_images_pages_see_every_image_once_while_images_arrive(session: Session) -> None:
    campaign = make_campaign(session, "completed", "completed", "submitted")
    first, second, third = jobs_of(session, campaign.id)
    existing = [add_image(session, job).id for job in (first, second, first, third)]
    other = make_campaign(session, "completed")
    add_image(session, jobs_of(session, other.id)[0])  # another campaign's image

    seen: list[int] = []
    late: list[int] = []
    after = None
    while True:
        page = images_page(session, campaign.id, after_id=after, limit=2)
        if not page:
            break
        seen += [image.id for image, job in page]
        assert all(job.campaign_id == campaign.id for _, job in page)
        # Late results arrive between two pages: for a job paged past (not seen), and one
        # for a job ahead (seen, once).
        if page[-1][1].id != first.id:
            add_image(session, first)
        if not late:
            late.append(add_image(session, third).id)
        after = page[-1][0].id

    assert sorted(seen) == sorted(existing + late)
    with pytest.raises(InvalidInput, match="after: 987654321 is not allowed"):
        images_page(session, campaign.id, after_id=987654321)


def test_an_export_row_carries_the_request_and_the_image(session: Session) -> None:
    campaign = make_campaign(session, "completed", "failed")
    completed, failed = jobs_of(session, campaign.id)
    image = add_image(session, completed, "0.0400")
    add_image(session, failed, "0.02")

    rows = list(export_rows(session, campaign.id))

    assert len(rows) == 2 and all(tuple(row) == EXPORT_FIELDS for row in rows)
    assert rows[0] == {
        "campaign_id": campaign.id,
        "campaign": campaign.name,
        "job_id": completed.id,
        "task_uuid": str(completed.task_uuid),
        "status": "completed",
        "provider": "runware",
        "model": "ideogram:1@2",
        "prompt": "a remix",
        "parameters": {"width": 1024},
        "variant": None,
        "image_uuid": str(image.image_uuid),
        "image_url": image.image_url,
        "seed": 42,
        "nsfw": False,
        "cost_usd": "0.04",
        "cost_estimated": False,  # Runware reports the cost of each image
        # Its copy is not made yet (remixq.assets): pending, nothing known of the bytes.
        "asset_status": "pending",
        "asset_reason": None,
        "sha256": None,
        "size_bytes": None,
        "content_type": None,
        "width": None,
        "height": None,
    }
    with pytest.raises(UnknownCampaign):
        list(export_rows(session, 987654321))


def test_the_report_is_the_streamed_views_under_its_head(session: Session) -> None:
    campaign = make_campaign(session, "completed", "failed")
    add_image(session, jobs_of(session, campaign.id)[0])
    retry_campaign(session, campaign.id)

    report = campaign_report(session, campaign)

    assert report["counts"] == {"completed": 1, "pending": 1}
    assert report["outcome"] == "running" and report["images"] == 1
    assert [job["status"] for job in report["jobs"]] == ["completed", "pending"]
    (superseded,) = report["superseded"]
    assert superseded["retried_as"] == report["jobs"][1]["task_uuid"]
    assert report["jobs"][1]["retry_of"] == superseded["task_uuid"]
    assert list(job_views(session, campaign.id, batch=1)) == report["jobs"]
    assert report_head(session, campaign).items() <= report.items()


def test_the_export_of_a_large_campaign_runs_in_constant_memory(session: Session) -> None:
    """20,000 images: held at once, their rows would take tens of megabytes; streamed in
    batches of 1,000, the export's peak stays a small fraction of that."""
    campaign_id = bulk_campaign(session, jobs=20_000)
    session.expire_all()

    tracemalloc.start()
    try:
        rows = 0
        for row in export_rows(session, campaign_id):
            rows += 1
            assert row["cost_usd"] == "0.04"
        _, streamed = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        held = list(export_rows(session, campaign_id))
        _, loaded = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert rows == len(held) == 20_000
    assert streamed < 8_000_000, f"peak {streamed} bytes"
    assert loaded > 3 * streamed  # the bound would fail if everything were loaded


def _plan(session: Session, sent: list[tuple[str, Any]]) -> str:
    statement, parameters = sent[-1]
    rows = session.connection().exec_driver_sql("EXPLAIN " + statement, parameters)
    return "\n".join(row[0] for row in rows)


def test_pages_of_a_large_campaign_walk_indexes_on_postgresql(pg_session: Session) -> None:
    session = pg_session
    campaign_id = bulk_campaign(session, jobs=20_000, images_per_job=2)
    bulk_campaign(session, jobs=5_000)  # another campaign around it
    session.execute(text("ANALYZE jobs"))
    session.execute(text("ANALYZE images"))
    middle = jobs_page(session, campaign_id, after_id=None, limit=1000)[-1]
    image = images_page(session, campaign_id, limit=500)[-1][0]

    plans = []
    for page in (
        lambda: jobs_page(session, campaign_id, after_id=middle.id, limit=100),
        lambda: jobs_page(session, campaign_id, status="completed", after_id=middle.id),
        lambda: images_page(session, campaign_id, after_id=image.id, limit=100),
    ):
        with statements(session) as sent:
            assert len(page()) == 100
        plans.append(_plan(session, sent))

    for plan in plans:  # indexes walked from the cursor: no scan of a table, no full sort
        assert "Seq Scan" not in plan, plan
        assert plan.count("Sort Key") == plan.count("Presorted Key"), plan
        lines = plan.splitlines()
        scans = [n for n, line in enumerate(lines) if "Index Scan" in line]
        assert scans and all("Index Cond" in lines[n + 1] for n in scans), plan
