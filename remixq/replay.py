"""Re-ingesting stored inbox events: an orphan whose job now exists, a body kept as invalid
after a fix, or any event at all. Ingestion is idempotent, so a replay never stores an image
twice or moves a cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq.ingest import DEFAULT_LIMITS, Limits, ingest
from remixq.models import WebhookEvent
from remixq.states import InboxStatus

DEFAULT_STATUSES = (InboxStatus.ORPHAN, InboxStatus.INVALID)


def replay_events(
    session: Session,
    *,
    statuses: Sequence[str] = DEFAULT_STATUSES,
    event_ids: Sequence[int] = (),
    limit: int = 10_000,
    limits: Limits = DEFAULT_LIMITS,
) -> Counter[str]:
    """Apply stored events again, within `limits` (the caller's settings); returns how many
    ended in each inbox status (and images)."""
    query = select(WebhookEvent).order_by(WebhookEvent.id).limit(limit)
    query = (
        query.where(WebhookEvent.id.in_(event_ids))
        if event_ids
        else query.where(WebhookEvent.status.in_(statuses))
    )
    tally: Counter[str] = Counter()
    for event in session.scalars(query.with_for_update(skip_locked=True)):
        outcome = ingest(
            session,
            body=event.body,
            source=event.source,
            expected_task_uuid=event.task_uuid,
            event=event,
            limits=limits,
        )
        tally[outcome.inbox_status] += 1
        tally["images_stored"] += outcome.images_stored
    return tally
