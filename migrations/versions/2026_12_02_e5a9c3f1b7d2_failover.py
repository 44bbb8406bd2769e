"""Failover (remixq.failover): a campaign's failover provider, and on a failed Runware job
whether (and why) it failed over.

Revision ID: e5a9c3f1b7d2
Revises: b6d41f9e2c57
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5a9c3f1b7d2"
down_revision: str | None = "b6d41f9e2c57"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("failover", sa.String(20), nullable=True))
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("failover_state", sa.String(20), nullable=True))
        batch_op.add_column(sa.Column("failover_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("failover_reason")
        batch_op.drop_column("failover_state")
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("failover")
