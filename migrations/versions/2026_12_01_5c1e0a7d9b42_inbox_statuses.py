"""Inbox statuses are the state machine's `InboxStatus`: the never-written "received" goes, and
a row's status has no default (ingestion writes it with the row).

Revision ID: 5c1e0a7d9b42
Revises: eaff8d262289
Create Date: 2026-12-01 19:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "5c1e0a7d9b42"
down_revision: str | None = "eaff8d262289"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported from remixq.states: a revision must keep meaning what it meant.
STATUSES = "'processed', 'orphan', 'invalid', 'rejected'"
OLD_STATUSES = "'received', 'processed', 'orphan', 'invalid', 'rejected'"


def upgrade() -> None:
    # No release wrote "received"; should a row have it, it was never applied: an orphan is
    # what `remixq replay` picks up by default.
    op.execute("UPDATE webhook_events SET status = 'orphan' WHERE status = 'received'")
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.drop_constraint(op.f("ck_webhook_events_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_webhook_events_status"), f"status IN ({STATUSES})"
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.drop_constraint(op.f("ck_webhook_events_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_webhook_events_status"), f"status IN ({OLD_STATUSES})"
        )
