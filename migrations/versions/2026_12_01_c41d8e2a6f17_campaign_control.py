"""Campaign control: a `cancelled` job status, who paused a campaign (the account probe lifts only
the account's pauses), when it was cancelled, and the indexes of keyset pages over a campaign's
jobs.

Revision ID: c41d8e2a6f17
Revises: 7b2f4c9e1d03
Create Date: 2026-12-01 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c41d8e2a6f17"
down_revision: str | None = "7b2f4c9e1d03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported from remixq.states: a revision must keep meaning what it meant.
STATUSES = "'pending', 'queued', 'submitting', 'submitted', 'completed', 'failed', 'cancelled'"
OLD_STATUSES = "'pending', 'queued', 'submitting', 'submitted', 'completed', 'failed'"
PAUSERS = "'account', 'user'"
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("paused_by", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("cancelled_at", TIMESTAMP, nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_campaigns_paused_by"), f"paused_by IN ({PAUSERS})"
        )
    # Every pause before this revision was the account's.
    op.execute("UPDATE campaigns SET paused_by = 'account' WHERE paused_at IS NOT NULL")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_jobs_status"), f"status IN ({STATUSES})")
    op.create_index("ix_jobs_campaign_id_id", "jobs", ["campaign_id", "id"])
    op.create_index("ix_jobs_campaign_id_status_id", "jobs", ["campaign_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_campaign_id_status_id", table_name="jobs")
    op.drop_index("ix_jobs_campaign_id_id", table_name="jobs")
    # The old statuses have no "cancelled": such a job is final, failed with the reason.
    op.execute(
        "UPDATE jobs SET status = 'failed', error_code = 'cancelled',"
        " error_message = 'the campaign was cancelled' WHERE status = 'cancelled'"
    )
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_jobs_status"), f"status IN ({OLD_STATUSES})")
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_constraint(op.f("ck_campaigns_paused_by"), type_="check")
        batch_op.drop_column("cancelled_at")
        batch_op.drop_column("paused_by")
