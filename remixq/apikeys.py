"""The REST API's keys: made, listed, revoked, and a presented key checked.

A key reads `rmxq_<prefix>_<secret>`: the prefix (8 hex digits, public, unique) finds the row,
the secret (32 random bytes, URL-safe base64) proves the caller has the key. Only the SHA-256 of
the whole key is stored, compared in constant time (`hmac.compare_digest`). A fast hash is enough
here, and a slow KDF (bcrypt, scrypt, argon2) would only cost every request its time: those
exist to slow down guessing a low-entropy password from a stolen hash, and a 256-bit random
secret cannot be guessed at any speed. The key itself is shown once, when it is made, and is
never stored, listed or logged; logs name a key by its name.

Each function takes the session keyword-only and never commits: the edge owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from remixq.db import utcnow
from remixq.errors import FieldError, InvalidInput
from remixq.models import ApiKey

KEY_PREFIX = "rmxq"
_KEY_RE = re.compile(r"rmxq_(?P<prefix>[0-9a-f]{8})_(?P<secret>[A-Za-z0-9_-]{43})")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_ALLOWED = "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
# last_used_at is written at most this often per key: a busy integration would otherwise turn
# every read into a write on one row.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewKey:
    """A key just made: `key` is the only copy of the secret there will ever be."""

    name: str
    key: str
    read_only: bool


@dataclass(frozen=True)
class Caller:
    """The key a request authenticated with (never the key itself)."""

    id: int
    name: str
    read_only: bool


def digest(key: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, name: str, read_only: bool = False) -> NewKey:
    """Make key `name`; a name in use (revoked keys included) or malformed is refused."""
    if not NAME_RE.fullmatch(name):
        raise InvalidInput([FieldError("NAME", name, NAME_ALLOWED)])
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise InvalidInput([FieldError("NAME", name, "a name no API key has (revoked ones too)")])
    while True:
        prefix = secrets.token_hex(4)
        if session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        name=name,
        prefix=prefix,
        secret_sha256=digest(key),
        read_only=read_only,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent create took the name (or, once in 4e9, the prefix)
        raise InvalidInput([FieldError("NAME", name, "a name no API key has")]) from None
    return NewKey(name=name, key=key, read_only=read_only)


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, oldest first, revoked ones included (the rows hold no key)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, *, name: str) -> ApiKey:
    """Revoke key `name` (at once: its next request gets 401); revoking twice is a no-op."""
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise InvalidInput([FieldError("NAME", name, "the name of an existing API key")])
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def authenticate(session: Session, presented: str) -> Caller | None:
    """The live key `presented` is, or None (malformed, unknown, wrong secret, revoked).

    Found by its prefix, then compared digest to digest in constant time, so that the answer's
    timing tells nothing about how much of a secret was right. Records when the key was used.
    """
    match = _KEY_RE.fullmatch(presented)
    if match is None:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == match["prefix"]))
    if row is None or not hmac.compare_digest(row.secret_sha256, digest(presented)):
        return None
    if row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    return Caller(id=row.id, name=row.name, read_only=row.read_only)


def key_name(session: Session, key_id: int | None) -> str | None:
    return (
        None if key_id is None else session.scalar(select(ApiKey.name).where(ApiKey.id == key_id))
    )


def describe(row: ApiKey) -> dict[str, str | bool | None]:
    """A key as `apikey list --json` shows it: never the key, nor its digest."""

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "name": row.name,
        "prefix": f"{KEY_PREFIX}_{row.prefix}_",
        "read_only": row.read_only,
        "created_at": when(row.created_at),
        "last_used_at": when(row.last_used_at),
        "revoked_at": when(row.revoked_at),
    }
