"""A campaign remembers the SHA-256 of the file that created it (`submit` refuses the same
content twice unless told `--again`); taskUUIDs stored with another spelling are made lowercase.

Revision ID: 9f3b61c2d7e4
Revises: 5c1e0a7d9b42
Create Date: 2026-12-01 19:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9f3b61c2d7e4"
down_revision: str | None = "5c1e0a7d9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_campaigns_content_sha256"), ["content_sha256"])
    # Earlier releases kept a user's uppercase taskUUID as written: in the task sent (both
    # backends) and, on SQLite, in the stored hex, where it then failed every lowercase lookup.
    # PostgreSQL's uuid column is canonical already. A row whose lowercase spelling another row
    # holds is left as it is rather than failing the upgrade.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE jobs SET request = jsonb_set(request, '{taskUUID}',"
            " to_jsonb(lower(request->>'taskUUID')))"
            " WHERE request->>'taskUUID' <> lower(request->>'taskUUID')"
        )
    else:
        op.execute(
            "UPDATE jobs SET task_uuid = lower(task_uuid) WHERE task_uuid <> lower(task_uuid)"
            " AND lower(task_uuid) NOT IN (SELECT task_uuid FROM jobs)"
        )
        op.execute(
            "UPDATE jobs SET request = json_set(request, '$.taskUUID',"
            " lower(json_extract(request, '$.taskUUID')))"
            " WHERE json_extract(request, '$.taskUUID')"
            " <> lower(json_extract(request, '$.taskUUID'))"
        )


def downgrade() -> None:
    # Lowercase taskUUIDs mean what they meant: only the column goes.
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_constraint(op.f("uq_campaigns_content_sha256"), type_="unique")
        batch_op.drop_column("content_sha256")
