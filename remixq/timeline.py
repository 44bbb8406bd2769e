"""What a campaign spent over time: its images' costs summed in time buckets, one SQL
aggregate (the bucket is chosen from the span between its first and last image, so that there
are at most `max_buckets` whatever the campaign's size or duration)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, func, select, type_coerce
from sqlalchemy.orm import Session

from remixq.db import Money
from remixq.models import Image, Job

# Bucket widths (seconds) from which the narrowest that fits the span is taken.
BUCKETS = (1, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)


@dataclass(frozen=True)
class Point:
    """One bucket: when it starts, the images stored in it and what they cost."""

    start: datetime
    images: int
    cost: Decimal


@dataclass(frozen=True)
class Timeline:
    bucket_seconds: int
    points: list[Point]

    @property
    def total(self) -> Decimal:
        return sum((p.cost for p in self.points), Decimal(0))


def _epoch(column: Any, dialect: str) -> ColumnElement[int]:
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), Integer)
    return cast(func.strftime("%s", column), Integer)  # SQLite keeps UTC without a zone


def spend_over_time(session: Session, campaign_id: int, *, max_buckets: int = 120) -> Timeline:
    """The campaign's images (every attempt's: each was paid for) and their cost per bucket,
    oldest first; empty buckets are left out."""
    of_campaign = Job.campaign_id == campaign_id
    first, last = session.execute(
        select(func.min(Image.created_at), func.max(Image.created_at))
        .join(Job, Image.job_id == Job.id)
        .where(of_campaign)
    ).one()
    if first is None or last is None:
        return Timeline(BUCKETS[0], [])
    first, last = _aware(first), _aware(last)
    span = (last - first).total_seconds()
    width = next((b for b in BUCKETS if span / b < max_buckets), BUCKETS[-1])
    dialect = session.get_bind().dialect.name
    bucket = (_epoch(Image.created_at, dialect) // width).label("bucket")
    rows = session.execute(
        select(bucket, func.count(Image.id), type_coerce(func.sum(Image.cost), Money))
        .join(Job, Image.job_id == Job.id)
        .where(of_campaign)
        .group_by(bucket)
        .order_by(bucket)
    ).all()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    points = [
        Point(epoch + timedelta(seconds=int(row[0]) * width), int(row[1]), row[2] or Decimal(0))
        for row in rows
    ]
    return Timeline(width, points)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
