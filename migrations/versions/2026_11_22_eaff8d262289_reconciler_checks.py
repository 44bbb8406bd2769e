"""Reconciler: count of getResponse polls per job, and an index to find the jobs due a check.

Revision ID: eaff8d262289
Revises: 33ae4e6130f1
Create Date: 2026-11-22 00:18:09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "eaff8d262289"
down_revision: str | None = "33ae4e6130f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        # A server default fills the rows that already exist.
        batch_op.add_column(sa.Column("checks", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index("ix_jobs_status_next_check_at", ["status", "next_check_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_status_next_check_at")
        batch_op.drop_column("checks")
