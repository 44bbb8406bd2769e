"""The spend report as people and programs read it: `remixq costs` and the API's
`GET /api/v1/costs` answer the same document, made here.

The figures are `remixq.budgets.cost_report`'s (SQL aggregates, one row per group); this module
names each group (a campaign by its name, a variant by its axis values) and adds the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq.budgets import Spend, cost_report
from remixq.models import Campaign
from remixq.specs import variant_text


@dataclass(frozen=True)
class CostLine:
    """One group: its key for machines (a campaign's name, a model, a UTC day, a variant's
    axis values or None), its label for people, the campaign's id (by campaign) and figures."""

    key: Any
    label: str
    spend: Spend
    campaign_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        line = {"key": self.key, **self.spend.to_json()}
        if self.campaign_id is not None:
            line["campaign_id"] = self.campaign_id
        return line


@dataclass(frozen=True)
class CostReport:
    """Estimated, reserved, spent and overrun USD per group, and in all."""

    by: str
    lines: list[CostLine]
    total: Spend

    def to_json(self, campaign: Any = None) -> dict[str, Any]:
        """`{"by", "campaign", "rows": [{"key", "jobs", "images", "estimated_usd",
        "reserved_usd", "spent_usd", "overrun_usd"}], "total"}` (by campaign each row also has
        its `campaign_id`); `campaign` is the campaign the caller asked about, as it named it."""
        return {
            "by": self.by,
            "campaign": campaign,
            "rows": [line.to_json() for line in self.lines],
            "total": self.total.to_json(),
        }


def costs(session: Session, *, by: str = "campaign", campaign_id: int | None = None) -> CostReport:
    """The spend of one campaign (or of all) by campaign, model, day or variant
    (`remixq.budgets.COST_GROUPS`; another `by` is refused, InvalidInput)."""
    rows = cost_report(session, by=by, campaign_id=campaign_id)
    names: dict[Any, str] = {}
    if by == "campaign":
        named = select(Campaign.id, Campaign.name).where(Campaign.id.in_([r.key for r in rows]))
        names = {row.id: row.name for row in session.execute(named)}
    lines = []
    for row in rows:
        if by == "campaign":
            name = names.get(row.key, "?")
            lines.append(CostLine(name, f"{name} (#{row.key})", row.spend, row.key))
        else:
            lines.append(CostLine(row.key, _label(row.key), row.spend))
    total = sum((row.spend for row in rows), Spend())
    return CostReport(by, lines, total)


def _label(key: Any) -> str:
    if key is None:
        return "(none)"
    if isinstance(key, dict):
        return variant_text(key)
    return str(key)
