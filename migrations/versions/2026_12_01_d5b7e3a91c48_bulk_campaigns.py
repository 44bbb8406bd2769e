"""Bulk campaigns: a campaign may carry a budget (USD) and a job the variant that produced it
(the axis values of its spec's matrix, or its explicit job's index).

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

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
# Money: exact NUMERIC on PostgreSQL, integer units of 1e-10 USD on SQLite (remixq.db.Money).
MONEY = sa.Numeric(precision=18, scale=10).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("budget_usd", MONEY, nullable=True))
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("variant", JSON_DOCUMENT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("variant")
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("budget_usd")
