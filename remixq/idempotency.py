"""Idempotency keys of the REST API's POSTs: a retried request finds what the first one made.

A key is claimed in the transaction that makes the campaign, with an insert-or-ignore on the
unique (API key, idempotency key) pair: on PostgreSQL a concurrent identical request's insert
waits for the first transaction, then finds its committed row and answers with its campaign;
should the first roll back, the second makes the campaign itself. So a key names at most one
campaign, across processes and restarts, without a check-then-insert race.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from remixq.db import utcnow
from remixq.models import IdempotencyKey

_table = IdempotencyKey.metadata.tables[IdempotencyKey.__tablename__]
MAX_KEY_CHARS = 200


class IdempotencyKeyReused(ValueError):
    """The key was used before with another request body."""

    def __init__(self, key: str, campaign_id: int | None):
        self.key, self.campaign_id = key, campaign_id
        super().__init__(
            f"Idempotency-Key {key!r} was used before with another request body"
            + (f" (it made campaign {campaign_id})" if campaign_id is not None else "")
            + "; use a new key for a new request"
        )


@dataclass(frozen=True)
class Claim:
    """A claimed key: `row_id` to record the campaign on, or the campaign a prior request made
    (`campaign_id`, and then nothing is to be made)."""

    row_id: int | None
    campaign_id: int | None = None


def request_digest(document: Any) -> str:
    """SHA-256 of a request body's canonical JSON (keys sorted): the same request, however its
    keys were ordered or spaced, has the same digest."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def claim(session: Session, *, api_key_id: int | None, key: str, digest: str) -> Claim:
    """Claim `key` for a request with body digest `digest`, or find what it made before; a key
    used before with another body raises IdempotencyKeyReused. `api_key_id` None: a key of the
    command line's (`remixq submit --idempotency-key`), in a namespace of its own."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(_table)
        .values(api_key_id=api_key_id, key=key, request_sha256=digest, created_at=utcnow())
        .on_conflict_do_nothing()
        .returning(_table.c.id)
    ).scalar()
    if inserted is not None:
        return Claim(row_id=inserted)
    known = session.execute(
        select(_table.c.request_sha256, _table.c.campaign_id).where(
            _table.c.api_key_id.is_(None)
            if api_key_id is None
            else _table.c.api_key_id == api_key_id,
            _table.c.key == key,
        )
    ).one()
    if known.request_sha256 != digest or known.campaign_id is None:
        raise IdempotencyKeyReused(key, known.campaign_id)
    return Claim(row_id=None, campaign_id=known.campaign_id)


def record(session: Session, *, claimed: Claim, campaign_id: int) -> None:
    """Remember the campaign the claiming request made (in the same transaction)."""
    if claimed.row_id is not None:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == claimed.row_id)
            .values(campaign_id=campaign_id)
        )
