"""A campaign as the dashboard shows it, in one plain dict that the pages render and the live
endpoint sends as JSON (so a live update changes exactly what the page drew)."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Any

from remixq.budgets import usd
from remixq.reports import CampaignSummary
from webhook_receiver.dashboard.blueprint import OPEN_STATUSES, STATUSES
from webhook_receiver.dashboard.charts import segments

ORDER = [s.value for s in STATUSES]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _text(value: Any) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"


def progress_text(counts: dict[str, int]) -> str:
    """`12 of 40 done: 10 completed, 2 failed; 28 submitted`."""
    total = sum(counts.values())
    done = total - sum(n for status, n in counts.items() if status in OPEN_STATUSES)
    parts = [f"{counts[s]} {s}" for s in ORDER if counts.get(s)]
    return f"{done} of {total} done" + (": " + ", ".join(parts) if parts else "")


def campaign_view(
    summary: CampaignSummary, *, models: list[str], schedule: dict[str, Any] | None = None
) -> dict[str, Any]:
    counts = dict(summary.counts)
    total = summary.jobs
    done = total - sum(n for status, n in counts.items() if status in OPEN_STATUSES)
    spent = summary.spend.spent
    budget = summary.budget_usd
    used = None
    if budget is not None and budget > 0:
        used = float(min(summary.spend.committed / budget, Decimal(1)) * 100)
    if summary.paused:
        state = f"paused ({summary.paused_by or 'user'})"
    elif summary.cancelled_at is not None and summary.outcome == "running":
        state = "cancelling"
    else:
        state = summary.outcome
    return {
        "id": summary.id,
        "name": summary.name,
        "outcome": summary.outcome,
        "state": state,
        "jobs": total,
        "done": done,
        "percent": round(100 * done / total) if total else 0,
        "counts": counts,
        "progress": progress_text(counts),
        "segments": [vars(s) for s in segments(counts, ORDER)],
        "images": summary.images,
        "spent_usd": usd(spent),
        # The part of the spend that is the price table's (a provider reporting no cost).
        "spent_estimated_usd": usd(summary.spend.spent_estimated),
        "estimated_usd": usd(summary.spend.estimated),
        "reserved_usd": usd(summary.spend.reserved),
        "overrun_usd": usd(summary.spend.overrun),
        "budget_usd": None if budget is None else usd(budget),
        "budget_left_usd": None if summary.budget_left is None else usd(summary.budget_left),
        "budget_used_percent": used,
        "superseded": summary.superseded,
        "paused": summary.paused,
        "paused_by": summary.paused_by,
        "pause_reason": summary.pause_reason,
        "cancelled": summary.cancelled_at is not None,
        "created_at": _iso(summary.created_at),
        "finished_at": _iso(summary.finished_at),
        "created_text": _text(summary.created_at),
        "finished_text": _text(summary.finished_at),
        "models": models,
        "schedule": schedule,
    }
