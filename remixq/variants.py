"""A campaign by variant, for comparing them (`remixq status CAMPAIGN --by variant`): per
variant (a spec's axis values, `{"job": i}` for its explicit job i, None for a plain request),
its jobs by status and what it made and cost.

Two aggregates whatever the campaign's size: the latest attempts by variant and status (as
`remixq status` counts jobs), and the spend by variant (`remixq.budgets.spend`: images and USD
of every attempt, as `status`'s cost). Variants come in the order of their first job, which for
a spec is the order the matrix expanded in.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from remixq.budgets import Spend, group_key, spend
from remixq.models import Job

_jobs = Job.metadata.tables[Job.__tablename__]


@dataclass
class VariantSummary:
    """One variant: its latest attempts by status, and the spend of all its attempts."""

    variant: dict[str, Any] | None
    counts: dict[str, int] = field(default_factory=dict)
    spend: Spend = field(default_factory=Spend)

    @property
    def jobs(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        figures = self.spend.to_json()
        return {
            "variant": self.variant,
            "jobs": self.jobs,
            "counts": dict(sorted(self.counts.items())),
            "images": figures["images"],
            **{k: v for k, v in figures.items() if k.endswith("_usd")},
        }


def by_variant(session: Session, campaign_id: int) -> list[VariantSummary]:
    """The campaign's variants, each with its jobs by status (latest attempts) and its spend
    (every attempt), in the order of their first job."""
    retry = aliased(Job)
    superseded = exists().where(retry.retry_of_id == Job.id)
    rows = session.execute(
        select(Job.variant, Job.status, superseded, func.count(), func.min(Job.id))
        .where(Job.campaign_id == campaign_id)
        .group_by(Job.variant, Job.status, superseded)
    ).all()
    found: dict[Hashable, VariantSummary] = {}
    first: dict[Hashable, int] = {}
    for variant, status, was_retried, count, first_id in rows:
        key = group_key(variant)
        summary = found.setdefault(key, VariantSummary(variant))
        if not was_retried:
            summary.counts[status] = summary.counts.get(status, 0) + int(count)
        first[key] = min(first.get(key, first_id), first_id)
    spends = spend(session, where=_jobs.c.campaign_id == campaign_id, key=_jobs.c.variant)
    for key, figures in spends.items():
        if key in found:  # always: a retry keeps its variant, so every variant has a latest
            found[key].spend = figures
    return sorted(found.values(), key=lambda s: first.get(group_key(s.variant), 0))
