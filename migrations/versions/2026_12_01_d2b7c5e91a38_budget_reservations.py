"""Budgets: each job's estimate (reserved against its campaign's budget when it is stored), and
a campaign paused by its budget (`paused_by` "budget": an overrun left too little of it).

Revision ID: d2b7c5e91a38
Revises: d5b7e3a91c48
Create Date: 2026-12-01 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d2b7c5e91a38"
down_revision: str | None = "d5b7e3a91c48"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Money: exact NUMERIC on PostgreSQL, integer units of 1e-10 USD on SQLite (remixq.db.Money).
MONEY = sa.Numeric(precision=18, scale=10).with_variant(sa.BigInteger(), "sqlite")
# Written out, not imported from remixq.states: a revision must keep meaning what it meant.
PAUSERS = "'account', 'user', 'budget'"
OLD_PAUSERS = "'account', 'user'"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("estimated_cost", MONEY, nullable=True))
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_constraint(op.f("ck_campaigns_paused_by"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_campaigns_paused_by"), f"paused_by IN ({PAUSERS})"
        )


def downgrade() -> None:
    # The old pausers have no "budget": such a pause becomes a person's (only a resume naming
    # the campaign lifts it, as before).
    op.execute("UPDATE campaigns SET paused_by = 'user' WHERE paused_by = 'budget'")
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_constraint(op.f("ck_campaigns_paused_by"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_campaigns_paused_by"), f"paused_by IN ({OLD_PAUSERS})"
        )
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("estimated_cost")
