"""Two fewer indexes on `jobs`: every change of a job's status rewrites its row with a new
entry in each of the table's indexes (docs/benchmarks.md, "Webhook ingest").

- `ix_jobs_campaign_id` repeats the first column of `ix_jobs_campaign_id_id`, which serves the
  same lookups (a campaign's jobs, the foreign key's check on a campaign's deletion).
- `ix_jobs_retry_of_id` held an entry for every job, nearly all of them NULL; it now holds the
  retries alone (`retry_of_id IS NOT NULL`), which is all its lookups ask for
  (`retry_of_id = <a job's id>` implies it, on both databases).

Revision ID: f3c8b1d4a6e9
Revises: e5a9c3f1b7d2
Create Date: 2026-12-02 20:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f3c8b1d4a6e9"
down_revision: str | None = "e5a9c3f1b7d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETRIES = sa.text("retry_of_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_jobs_campaign_id", table_name="jobs")
    op.drop_index("ix_jobs_retry_of_id", table_name="jobs")
    op.create_index(
        "ix_jobs_retry_of_id",
        "jobs",
        ["retry_of_id"],
        postgresql_where=RETRIES,
        sqlite_where=RETRIES,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_retry_of_id", table_name="jobs")
    op.create_index("ix_jobs_retry_of_id", "jobs", ["retry_of_id"])
    op.create_index("ix_jobs_campaign_id", "jobs", ["campaign_id"])
