"""Schedules: recurring campaigns (a cron expression in a time zone, the campaign file's text, a
budget per occurrence, a catch-up policy), their occurrences (unique per schedule and time, so
that no occurrence fires twice), and the schedule a campaign came from.

Revision ID: 53b18847f30d
Revises: d2b7c5e91a38
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "53b18847f30d"
down_revision: str | None = "d2b7c5e91a38"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Money: exact NUMERIC on PostgreSQL, integer units of 1e-10 USD on SQLite (remixq.db.Money).
MONEY = sa.Numeric(precision=18, scale=10).with_variant(sa.BigInteger(), "sqlite")
# Written out, not imported from remixq.states: a revision must keep meaning what it meant.
CATCH_UPS = "'skip', 'latest', 'all'"
OCCURRENCE_STATUSES = "'fired', 'skipped'"


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_name", sa.String(length=255), nullable=False),
        sa.Column("budget_usd", MONEY, nullable=True),
        sa.Column("catch_up", sa.String(length=10), nullable=False),
        sa.Column("catch_up_max", sa.Integer(), nullable=False),
        sa.Column("paused_at", TIMESTAMP, nullable=True),
        sa.Column("next_due_at", TIMESTAMP, nullable=True),
        sa.Column("last_fired_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(f"catch_up IN ({CATCH_UPS})", name=op.f("ck_schedules_catch_up")),
        sa.CheckConstraint("catch_up_max >= 1", name=op.f("ck_schedules_catch_up_max")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_schedules_name")),
    )
    op.create_index("ix_schedules_next_due_at", "schedules", ["next_due_at"])
    op.create_table(
        "schedule_occurrences",
        sa.Column("id", ID, nullable=False),
        sa.Column("schedule_id", ID, nullable=False),
        sa.Column("occurrence_at", TIMESTAMP, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("campaign_id", ID, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            f"status IN ({OCCURRENCE_STATUSES})", name=op.f("ck_schedule_occurrences_status")
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_occurrences_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_schedule_occurrences_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_occurrences")),
        sa.UniqueConstraint(
            "schedule_id", "occurrence_at", name=op.f("uq_schedule_occurrences_schedule_id")
        ),
    )
    op.create_index(
        op.f("ix_schedule_occurrences_campaign_id"), "schedule_occurrences", ["campaign_id"]
    )
    # Nullable: campaigns submitted by a person, and those of a removed schedule, have none.
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("schedule_id", ID, nullable=True))
        batch_op.create_index(batch_op.f("ix_campaigns_schedule_id"), ["schedule_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_campaigns_schedule_id_schedules"),
            "schedules",
            ["schedule_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_campaigns_schedule_id_schedules"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_campaigns_schedule_id"))
        batch_op.drop_column("schedule_id")
    op.drop_index(op.f("ix_schedule_occurrences_campaign_id"), table_name="schedule_occurrences")
    op.drop_table("schedule_occurrences")
    op.drop_index("ix_schedules_next_due_at", table_name="schedules")
    op.drop_table("schedules")
