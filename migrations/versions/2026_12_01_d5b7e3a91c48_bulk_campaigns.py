"""Bulk campaigns: a campaign may carry a budget (USD) and a job the variant that produced it
(the axis values of its spec's matrix, or its explicit job's index); an idempotency key may be
the command line's (`remixq submit --idempotency-key`: no API key), unique among those.

Revision ID: d5b7e3a91c48
Revises: c4e8a2f17b95
Create Date: 2026-12-01 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d5b7e3a91c48"
down_revision: str | None = "c4e8a2f17b95"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
# Money: exact NUMERIC on PostgreSQL, integer units of 1e-10 USD on SQLite (remixq.db.Money).
MONEY = sa.Numeric(precision=18, scale=10).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("budget_usd", MONEY, nullable=True))
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("variant", JSON_DOCUMENT, nullable=True))
    with op.batch_alter_table("idempotency_keys") as batch_op:
        batch_op.alter_column("api_key_id", existing_type=ID, nullable=True)
    op.create_index(
        "uq_idempotency_keys_cli_key",
        "idempotency_keys",
        ["key"],
        unique=True,
        postgresql_where=sa.text("api_key_id IS NULL"),
        sqlite_where=sa.text("api_key_id IS NULL"),
    )


def downgrade() -> None:
    # The command line's keys go with their index: the column may not hold NULL again.
    op.drop_index("uq_idempotency_keys_cli_key", table_name="idempotency_keys")
    op.execute("DELETE FROM idempotency_keys WHERE api_key_id IS NULL")
    with op.batch_alter_table("idempotency_keys") as batch_op:
        batch_op.alter_column("api_key_id", existing_type=ID, nullable=False)
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("variant")
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("budget_usd")
