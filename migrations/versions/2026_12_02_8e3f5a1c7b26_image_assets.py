"""Image assets: each image's durable copy (status, reason, SHA-256, size, content type, format,
dimensions, storage key) and the sweep's bookkeeping (attempts, next attempt, hand-over token).

A new image row is `pending` by the column's default, so ingestion writes nothing more; the rows
that exist when this runs become pending too, and the workers try to copy them while their links
still work (an expired link ends `failed` with its reason).

Revision ID: 8e3f5a1c7b26
Revises: 53b18847f30d
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8e3f5a1c7b26"
down_revision: str | None = "53b18847f30d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported from remixq.states: a revision must keep meaning what it meant.
ASSET_STATUSES = "'pending', 'stored', 'failed', 'refused'"
# remixq.db.UTCDateTime: a timezone-aware timestamp (naive UTC on SQLite).
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("images") as batch_op:
        batch_op.add_column(
            sa.Column("asset_status", sa.String(20), server_default="pending", nullable=False)
        )
        batch_op.add_column(sa.Column("asset_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("sha256", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("size_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("content_type", sa.String(50), nullable=True))
        batch_op.add_column(sa.Column("format", sa.String(10), nullable=True))
        batch_op.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("height", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("storage_key", sa.String(200), nullable=True))
        batch_op.add_column(
            sa.Column("asset_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("asset_next_attempt_at", WHEN, nullable=True))
        batch_op.add_column(sa.Column("asset_claim", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("fetched_at", WHEN, nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_images_asset_status"), f"asset_status IN ({ASSET_STATUSES})"
        )
        batch_op.create_index(
            "ix_images_asset_pending",
            ["id"],
            postgresql_where=sa.text("asset_status = 'pending'"),
            sqlite_where=sa.text("asset_status = 'pending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("images") as batch_op:
        batch_op.drop_index("ix_images_asset_pending")
        batch_op.drop_constraint(op.f("ck_images_asset_status"), type_="check")
        for column in (
            "fetched_at",
            "asset_claim",
            "asset_next_attempt_at",
            "asset_attempts",
            "storage_key",
            "height",
            "width",
            "format",
            "content_type",
            "size_bytes",
            "sha256",
            "asset_reason",
            "asset_status",
        ):
            batch_op.drop_column(column)
