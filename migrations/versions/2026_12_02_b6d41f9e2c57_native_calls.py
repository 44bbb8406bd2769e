"""Native (synchronous) provider calls: when the current claim's call was sent, and how many
calls of the job lost their answer (each may have been charged: remixq.native).

Revision ID: b6d41f9e2c57
Revises: 8e3f5a1c7b26
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b6d41f9e2c57"
down_revision: str | None = "8e3f5a1c7b26"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# remixq.db.UTCDateTime: a timezone-aware timestamp (naive UTC on SQLite).
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("call_sent_at", WHEN, nullable=True))
        batch_op.add_column(
            sa.Column("lost_answers", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("lost_answers")
        batch_op.drop_column("call_sent_at")
