"""The ledger's bounds: a job counts the deliveries applied without their body kept (its inbox
full); the inbox is indexed by arrival time for `remixq inbox prune`; and on PostgreSQL a
function counts the stored images among some UUIDs with a fresh snapshot, for the cap on a job's
images (remixq.ingest.postgres: the one-statement store's own snapshot misses images that a
concurrent transaction stored while it waited for the job's row lock).

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


# VOLATILE: each query in it takes a fresh snapshot (PostgreSQL's "Function Volatility
# Categories"), so, called after the job's row lock is taken, it sees every image committed by
# the transaction that held the lock. plpgsql, so that it is never inlined into the caller.
STORED_IMAGES = """
CREATE OR REPLACE FUNCTION remixq_stored_images(ids uuid[]) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (SELECT count(*) FROM images WHERE image_uuid = ANY(ids));
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(STORED_IMAGES)
    # A server default: every existing job has had nothing dropped.
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(
            sa.Column("inbox_overflow", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_index("ix_webhook_events_received_at", "webhook_events", ["received_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION remixq_stored_images(uuid[])")
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("inbox_overflow")
