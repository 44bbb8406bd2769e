"""API keys on both databases: made with a one-time key, stored only as a digest, found by
prefix and compared in constant time, revoked, never listed; idempotency keys claimed once."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq import apikeys, idempotency
from remixq.errors import InvalidInput
from remixq.models import ApiKey
from tests.support.factories import make_job


def name() -> str:
    return f"k-{uuid.uuid4().hex[:12]}"


def test_a_key_is_shown_once_and_stored_only_as_its_digest(session: Session) -> None:
    made = apikeys.create_key(session, name=name())
    assert made.key.startswith("rmxq_") and len(made.key) == 5 + 8 + 1 + 43
    row = session.scalars(select(ApiKey).where(ApiKey.name == made.name)).one()
    stored = [str(getattr(row, column.key)) for column in ApiKey.__table__.columns]
    assert not any(made.key in value or made.key.split("_", 2)[2] in value for value in stored)
    assert row.secret_sha256 == apikeys.digest(made.key)
    assert made.key.split("_")[1] == row.prefix
    assert made.key not in str(apikeys.describe(row))
    assert set(apikeys.describe(row)) == {
        "name", "prefix", "read_only", "created_at", "last_used_at", "revoked_at",
    }  # fmt: skip


def test_authenticate_accepts_the_key_and_records_its_use(session: Session) -> None:
    made = apikeys.create_key(session, name=name(), read_only=True)
    caller = apikeys.authenticate(session, made.key)
    assert caller is not None and caller.name == made.name and caller.read_only
    row = session.scalars(select(ApiKey).where(ApiKey.name == made.name)).one()
    session.refresh(row)
    assert row.last_used_at is not None


@pytest.mark.parametrize(
    "spoil",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # the secret's last character
        lambda key: key.replace("rmxq_", "rmxq_0", 1)[:-1],  # another prefix
        lambda key: key + "x",
        lambda key: key[:0],
        lambda key: "Bearer " + key,
        lambda key: key.upper(),
    ],
)
def test_authenticate_refuses_anything_but_the_exact_key(
    session: Session, spoil: Callable[[str], str]
) -> None:
    made = apikeys.create_key(session, name=name())
    assert apikeys.authenticate(session, spoil(made.key)) is None


def test_a_revoked_key_is_refused_and_its_name_stays_taken(session: Session) -> None:
    made = apikeys.create_key(session, name=name())
    apikeys.revoke_key(session, name=made.name)
    apikeys.revoke_key(session, name=made.name)  # twice: a no-op
    assert apikeys.authenticate(session, made.key) is None
    with pytest.raises(InvalidInput, match="a name no API key has"):
        apikeys.create_key(session, name=made.name)


def test_bad_names_and_unknown_keys_are_refused_with_the_field(session: Session) -> None:
    with pytest.raises(InvalidInput) as bad:
        apikeys.create_key(session, name="has space")
    assert bad.value.errors[0].field == "NAME" and "letters, digits" in bad.value.errors[0].allowed
    with pytest.raises(InvalidInput, match="the name of an existing API key"):
        apikeys.revoke_key(session, name=name())


def test_an_idempotency_key_is_claimed_once_and_remembers_its_body(session: Session) -> None:
    key_id = session.scalars(
        select(ApiKey.id).where(ApiKey.name == apikeys.create_key(session, name=name()).name)
    ).one()
    digest = idempotency.request_digest({"name": "a", "jobs": [{"x": 1}]})
    assert digest == idempotency.request_digest({"jobs": [{"x": 1}], "name": "a"})
    first = idempotency.claim(session, api_key_id=key_id, key="k1", digest=digest)
    assert first.row_id is not None and first.campaign_id is None
    campaign_id = make_job(session).campaign_id
    assert campaign_id is not None
    idempotency.record(session, claimed=first, campaign_id=campaign_id)
    again = idempotency.claim(session, api_key_id=key_id, key="k1", digest=digest)
    assert again.row_id is None and again.campaign_id == campaign_id
    with pytest.raises(idempotency.IdempotencyKeyReused, match="another request body"):
        idempotency.claim(session, api_key_id=key_id, key="k1", digest="0" * 64)
