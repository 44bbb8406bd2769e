"""Campaigns paused by an account-level refusal (401/402/403): when, and the provider's words.

Revision ID: a7c3f19e2b64
Revises: 9f3b61c2d7e4
Create Date: 2026-12-01 19:41:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7c3f19e2b64"
down_revision: str | None = "9f3b61c2d7e4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Both nullable: every existing campaign is running (not paused).
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("paused_at", TIMESTAMP, nullable=True))
        batch_op.add_column(sa.Column("pause_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("pause_reason")
        batch_op.drop_column("paused_at")
