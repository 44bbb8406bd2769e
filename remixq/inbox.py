"""The webhook inbox's retention: rows that no replay needs are deleted once older than the
retention (REMIXQ_INBOX_RETENTION), in bounded batches, by `remixq inbox prune` and a periodic
task under beat.

What a replay needs stays (`remixq.replay`): an orphan waits for its job, whatever its age. A
processed, invalid or rejected row is kept for the retention, for `remixq replay` after a fix
and for reading, then deleted. A row is written with its final status in the transaction that
applies its body, so there is no row still being processed to wait for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from remixq.db import transaction, utcnow
from remixq.models import WebhookEvent
from remixq.states import InboxStatus

PRUNABLE = (InboxStatus.PROCESSED, InboxStatus.INVALID, InboxStatus.REJECTED)
# Rows deleted per transaction: short locks, and a WAL flush every thousand rows at most.
PRUNE_BATCH = 1000


@dataclass(frozen=True)
class Pruned:
    before: datetime  # rows received before this were prunable
    found: dict[str, int]  # the prunable rows by status, when the prune began
    deleted: int  # the rows this prune deleted (none on a dry run)


def _prunable(before: datetime) -> ColumnElement[bool]:
    return WebhookEvent.status.in_([s.value for s in PRUNABLE]) & (
        WebhookEvent.received_at < before
    )


def prunable(session: Session, *, before: datetime) -> dict[str, int]:
    """The rows a prune would delete now, by status."""
    rows = session.execute(
        select(WebhookEvent.status, func.count())
        .where(_prunable(before))
        .group_by(WebhookEvent.status)
    ).all()
    return {str(status): int(count) for status, count in sorted(rows)}


def prune_batch(session: Session, *, before: datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete up to `limit` prunable rows received before `before`, the oldest first."""
    ids = (
        select(WebhookEvent.id)
        .where(_prunable(before))
        .order_by(WebhookEvent.received_at)
        .limit(limit)
        .scalar_subquery()
    )
    result = session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(ids)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def prune(
    sessions: sessionmaker[Session],
    *,
    older_than: timedelta,
    batch: int = PRUNE_BATCH,
    dry_run: bool = False,
) -> Pruned:
    """Delete the rows no replay needs that are older than `older_than`, one committed batch
    at a time (`dry_run`: only count them). A concurrent prune takes its share: each deletes
    what is still there."""
    before = utcnow() - older_than
    with transaction(sessions) as session:
        found = prunable(session, before=before)
    deleted = 0
    while found and not dry_run:
        with transaction(sessions) as session:
            gone = prune_batch(session, before=before, limit=batch)
        deleted += gone
        if gone < batch:
            break
    return Pruned(before, found, deleted)
