"""The inbox's bounds: a job counts the deliveries applied without their body kept (its inbox
full), and the inbox is indexed by arrival time for `remixq inbox prune`.

Revision ID: c4e8a2d61f5b
Revises: 7b2f4c9e1d03
Create Date: 2026-12-01 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e8a2d61f5b"
down_revision: str | None = "7b2f4c9e1d03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A server default: every existing job has had nothing dropped.
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(
            sa.Column("inbox_overflow", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_index("ix_webhook_events_received_at", "webhook_events", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("inbox_overflow")
