"""Initial schema: campaigns, jobs, images and the raw webhook inbox.

Revision ID: 33ae4e6130f1
Revises:
Create Date: 2026-11-22 00:07:51
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "33ae4e6130f1"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only
TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
# Money: exact NUMERIC on PostgreSQL, integer units of 1e-10 USD on SQLite (remixq.db.Money).
MONEY = sa.Numeric(precision=18, scale=10).with_variant(sa.BigInteger(), "sqlite")
JOB_STATUSES = "'pending', 'queued', 'submitting', 'submitted', 'completed', 'failed'"
INBOX_STATUSES = "'received', 'processed', 'orphan', 'invalid', 'rejected'"


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("task_uuid", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(f"status IN ({INBOX_STATUSES})", name=op.f("ck_webhook_events_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    )
    op.create_index(op.f("ix_webhook_events_task_uuid"), "webhook_events", ["task_uuid"])

    op.create_table(
        "jobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("campaign_id", ID, nullable=True),
        sa.Column("task_uuid", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=50), nullable=False),
        sa.Column("request", JSON_DOCUMENT, nullable=False),
        sa.Column("number_results", sa.Integer(), nullable=False),
        sa.Column("results_received", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("retry_of_id", ID, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("enqueued_at", TIMESTAMP, nullable=True),
        sa.Column("claimed_at", TIMESTAMP, nullable=True),
        sa.Column("submitted_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("next_check_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(f"status IN ({JOB_STATUSES})", name=op.f("ck_jobs_status")),
        sa.CheckConstraint("number_results BETWEEN 1 AND 20", name=op.f("ck_jobs_number_results")),
        sa.CheckConstraint("results_received >= 0", name=op.f("ck_jobs_results_received")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_jobs_campaign_id_campaigns"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["retry_of_id"], ["jobs.id"], name=op.f("fk_jobs_retry_of_id_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("task_uuid", name=op.f("uq_jobs_task_uuid")),
    )
    op.create_index(op.f("ix_jobs_campaign_id"), "jobs", ["campaign_id"])
    op.create_index(op.f("ix_jobs_retry_of_id"), "jobs", ["retry_of_id"])
    op.create_index("ix_jobs_status_updated_at", "jobs", ["status", "updated_at"])

    op.create_table(
        "images",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("image_uuid", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("image_url", sa.Text(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("nsfw", sa.Boolean(), nullable=True),
        sa.Column("cost", MONEY, nullable=True),
        sa.Column("raw", JSON_DOCUMENT, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_images_job_id_jobs"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("image_uuid", name=op.f("uq_images_image_uuid")),
    )
    op.create_index(op.f("ix_images_job_id"), "images", ["job_id"])


def downgrade() -> None:
    op.drop_table("images")
    op.drop_table("jobs")
    op.drop_table("webhook_events")
    op.drop_table("campaigns")
