"""The REST API's keys (only a SHA-256 of each is stored) and the idempotency keys of its POSTs;
a campaign remembers the API key that created it.

Revision ID: c4e8a2f17b95
Revises: c41d8e2a6f17
Create Date: 2026-12-01 22:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e8a2f17b95"
down_revision: str | None = "c41d8e2a6f17"  # after api-control's campaign_control
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("last_used_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    # Nullable: campaigns submitted from the command line have no key.
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("api_key_id", ID, nullable=True))
        batch_op.create_index(batch_op.f("ix_campaigns_api_key_id"), ["api_key_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_campaigns_api_key_id_api_keys"),
            "api_keys",
            ["api_key_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", ID, nullable=False),
        sa.Column("api_key_id", ID, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", ID, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_idempotency_keys_api_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_idempotency_keys_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("api_key_id", "key", name=op.f("uq_idempotency_keys_api_key_id")),
    )
    op.create_index(op.f("ix_idempotency_keys_campaign_id"), "idempotency_keys", ["campaign_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_campaign_id"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_campaigns_api_key_id_api_keys"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_campaigns_api_key_id"))
        batch_op.drop_column("api_key_id")
    op.drop_table("api_keys")
