"""remixq.gallery and remixq.timeline on both backends: variant axes and their values, filters on
an axis's value (text, numbers, lists, null), comparisons, spend per time bucket."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from remixq import gallery
from remixq.errors import InvalidInput
from remixq.models import Campaign, Image, Job
from remixq.timeline import spend_over_time

VARIANTS: list[dict[str, Any]] = [
    {"positivePrompt": p, "inputs.referenceImages": [ref], "strength": s}
    for p in ("a tin", "a box")
    for ref in ("tins/green.png", "tins/red.png")
    for s in (0.5, 0.75)
] + [{"job": 0}]


def _campaign(session: Session, variants: list[dict[str, Any] | None]) -> Campaign:
    campaign = Campaign(name=f"g-{uuid.uuid4().hex[:10]}")
    session.add(campaign)
    session.flush()
    for variant in variants:
        session.add(
            Job(
                campaign_id=campaign.id,
                task_uuid=str(uuid.uuid4()),
                model="ideogram:4@2",
                request={"model": "ideogram:4@2"},
                number_results=1,
                status="completed",
                variant=variant,
            )
        )
    session.flush()
    return campaign


def test_axes_list_each_axis_and_its_values(session: Session) -> None:
    campaign = _campaign(session, [*VARIANTS, None])
    axes = gallery.variant_axes(session, campaign.id)
    assert axes.complete
    found = {axis.name: axis.values for axis in axes.axes}
    assert found["positivePrompt"] == ["a box", "a tin"]
    assert found["inputs.referenceImages"] == [["tins/green.png"], ["tins/red.png"]]
    assert [float(v) for v in found["strength"]] == [0.5, 0.75]
    assert found["job"] == [0]


@pytest.mark.parametrize(
    ("axis", "value", "count"),
    [
        ("positivePrompt", "a tin", 4),
        ("inputs.referenceImages", ["tins/red.png"], 4),
        ("job", 0, 1),
    ],
)
def test_a_filter_on_one_axis_value(session: Session, axis: str, value: Any, count: int) -> None:
    campaign = _campaign(session, [*VARIANTS, None])
    where = gallery.Filter(variant={axis: value})
    found = gallery.jobs_page(session, campaign.id, where)
    assert len(found) == count
    assert all(job.variant is not None and job.variant[axis] == value for job in found)


def test_a_filter_on_a_number_value_read_back_from_the_axes(session: Session) -> None:
    campaign = _campaign(session, VARIANTS)
    axis = gallery.variant_axes(session, campaign.id).get("strength")
    assert axis is not None
    value = gallery.parse_value(gallery.value_key(axis.values[1]), axis)
    found = gallery.jobs_page(session, campaign.id, gallery.Filter(variant={"strength": value}))
    assert len(found) == 4


def test_a_value_the_axis_lacks_is_refused(session: Session) -> None:
    campaign = _campaign(session, VARIANTS)
    axis = gallery.variant_axes(session, campaign.id).get("positivePrompt")
    assert axis is not None
    with pytest.raises(InvalidInput, match="positivePrompt"):
        gallery.parse_value('"a crate"', axis)


def test_pages_are_keyset_ranges_of_latest_attempts(session: Session) -> None:
    campaign = _campaign(session, [None] * 5)
    jobs = gallery.jobs_page(session, campaign.id, limit=5)
    retry = Job(
        campaign_id=campaign.id,
        task_uuid=str(uuid.uuid4()),
        model="ideogram:4@2",
        request={},
        number_results=1,
        status="pending",
        retry_of_id=jobs[0].id,
    )
    session.add(retry)
    session.flush()
    first = gallery.jobs_page(session, campaign.id, limit=2)
    assert [job.id for job in first] == [jobs[1].id, jobs[2].id]  # the retried one is replaced
    rest = gallery.jobs_page(session, campaign.id, after_id=first[-1].id, limit=10)
    assert [job.id for job in rest] == [jobs[3].id, jobs[4].id, retry.id]


def test_comparison_rows_line_up_the_other_axes(session: Session) -> None:
    campaign = _campaign(session, VARIANTS)
    axes = gallery.variant_axes(session, campaign.id)
    axis = axes.get("positivePrompt")
    assert axis is not None
    found = gallery.compare(session, campaign.id, axis, ["a tin", "a box"])
    assert found.columns == ["a tin", "a box"]
    assert len(found.rows) == 4  # two references x two strengths
    for _label, cells in found.rows:
        assert [len(cell) for cell in cells] == [1, 1]
        tin, box = cells[0][0].variant, cells[1][0].variant
        assert tin is not None and box is not None
        assert tin["strength"] == box["strength"]
        assert tin["inputs.referenceImages"] == box["inputs.referenceImages"]
    with pytest.raises(InvalidInput, match="two or more"):
        gallery.compare(session, campaign.id, axis, ["a tin"])


def test_models_of_campaigns_most_used_first(session: Session) -> None:
    campaign = _campaign(session, [None, None])
    session.add(
        Job(
            campaign_id=campaign.id,
            task_uuid=str(uuid.uuid4()),
            model="ideogram:1@2",
            request={},
            number_results=1,
        )
    )
    session.flush()
    assert gallery.models_of(session, [campaign.id]) == {
        campaign.id: ["ideogram:4@2", "ideogram:1@2"]
    }


def test_spend_over_time_sums_each_bucket(session: Session) -> None:
    campaign = _campaign(session, [None, None, None])
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    jobs = gallery.jobs_page(session, campaign.id)
    for offset, job in zip((0, 30, 3600), jobs, strict=True):
        session.add(
            Image(
                job_id=job.id,
                image_uuid=str(uuid.uuid4()),
                cost=Decimal("0.06"),
                raw={},
                created_at=start + timedelta(seconds=offset),
            )
        )
    session.flush()
    timeline = spend_over_time(session, campaign.id)
    assert timeline.bucket_seconds == 60  # 3600 s in under 120 buckets
    assert [(p.start, p.images, p.cost) for p in timeline.points] == [
        (start, 2, Decimal("0.12")),
        (start + timedelta(hours=1), 1, Decimal("0.06")),
    ]
    assert timeline.total == Decimal("0.18")


def test_spend_over_time_without_images_is_empty(session: Session) -> None:
    campaign = _campaign(session, [None])
    assert spend_over_time(session, campaign.id).points == []
