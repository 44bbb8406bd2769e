"""The inbox's taskUUID is a UUID column, as the job's is: rows compare and join by value, on
every backend in the job's own format. A stored text that is not a UUID (a path segment no job
could have) becomes NULL; the row and its body stay, for `remixq replay` and for reading.

Revision ID: 7b2f4c9e1d03
Revises: a7c3f19e2b64
Create Date: 2026-12-01 19:42:00
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7b2f4c9e1d03"
down_revision: str | None = "a7c3f19e2b64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The spellings PostgreSQL's uuid input reads that a taskUUID may have: 32 hex digits, hyphens
# in the standard places or none, optionally in braces, any case.
_UUID_TEXT = (
    r"^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$"
)


def _rewrite(convert: Callable[[str], str | None]) -> None:
    """Rewrite every stored taskUUID with `convert` (SQLite: no regular expressions in SQL)."""
    connection = op.get_bind()
    events = sa.table("webhook_events", sa.column("id"), sa.column("task_uuid"))
    rows = connection.execute(
        sa.select(events.c.id, events.c.task_uuid).where(events.c.task_uuid.is_not(None))
    ).all()
    for row in rows:
        new = convert(row.task_uuid)
        if new != row.task_uuid:
            connection.execute(sa.update(events).where(events.c.id == row.id).values(task_uuid=new))


def _as_hex(text: str) -> str | None:
    """The job column's SQLite form (32 lowercase hex digits), None when not a UUID."""
    try:
        return uuid.UUID(text).hex
    except ValueError:
        return None


def _as_text(stored: str) -> str:
    return str(uuid.UUID(stored))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE webhook_events ALTER COLUMN task_uuid TYPE uuid USING CASE"
            f" WHEN task_uuid ~ '{_UUID_TEXT}' THEN task_uuid::uuid END"
        )
        return
    _rewrite(_as_hex)
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.alter_column(
            "task_uuid",
            existing_type=sa.String(length=64),
            type_=sa.Uuid(as_uuid=False),
            existing_nullable=True,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE webhook_events ALTER COLUMN task_uuid TYPE varchar(64)"
            " USING task_uuid::text"
        )
        return
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.alter_column(
            "task_uuid",
            existing_type=sa.Uuid(as_uuid=False),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
    _rewrite(_as_text)
