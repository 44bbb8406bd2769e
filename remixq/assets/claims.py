"""The assets' rows: handing pending ones over to the workers, claiming them for a fetch, and
recording what the fetch did. Each function works in the caller's transaction and never commits.

No image is lost between ingestion and its copy: a new image row is `pending` (the column's
default, written with the row by ingestion, in its transaction), and the sweep (under beat)
hands over every pending row that is due, whatever happened before:

- `hand_over` takes due rows with `FOR UPDATE SKIP LOCKED` (sweeps on several machines never
  take one row twice), gives them a fresh token and a lease (`asset_next_attempt_at`), and
  returns their ids for the caller to publish after its commit. A message lost with the broker,
  or a worker that died mid-download, leaves the row pending: it is due again when the lease
  ends, and handed over again under a new token;
- `claim` is the worker's step before a fetch: it takes only the rows still pending under the
  message's token (a stale message, whose rows were handed over again or finished, claims
  nothing), counts the attempt and renews the lease for the fetch; `renew` renews it again
  before a later download of the batch when the lease might not cover it;
- `record` writes the outcomes of a batch (`record_stored`, `record_retry` and `record_final`
  one each), again only under the token: a late worker whose lease was taken over changes
  nothing, so a row is recorded once.

The sweep keeps at most `in_flight` rows handed over and unfinished, so a long backlog waits in
the database, not on the broker, and no lease runs out while its message waits in a queue.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from remixq.assets.verify import Verified, expected_format
from remixq.models import Image, Job
from remixq.provider_kinds import sync_providers
from remixq.states import AssetStatus

# The result item's fields that hold an inline output (outputType base64Data, dataURI).
INLINE_FIELDS = ("imageBase64Data", "imageDataURI")
_CHUNK = 500  # ids per statement (SQLite allows 32,766 parameters)


@dataclass(frozen=True)
class Handover:
    token: str
    image_ids: list[int]


@dataclass(frozen=True)
class AssetClaim:
    """What a worker needs to copy one image, claimed under `token`."""

    image_id: int
    image_uuid: str
    token: str
    attempts: int  # this one included
    url: str | None
    inline: str | None  # an inline output's base64 or data URI
    expected_format: str  # JPEG | PNG | WEBP (the request's outputFormat)
    expires_at: datetime  # when the link stops working, as far as we know
    raw_without_inline: dict[str, Any] | None  # the item to keep once an inline one is stored
    # The provider withheld it as unsafe (Ideogram's is_image_safe false): there is no URL.
    unsafe: bool = False


def _pending() -> Any:
    return Image.asset_status == AssetStatus.PENDING.value


def hand_over(
    session: Session, *, now: datetime, lease: timedelta, in_flight: int, limit: int = 1000
) -> Handover:
    """Up to `limit` due pending assets, handed over under a new token for `lease`, keeping at
    most `in_flight` handed over and unfinished."""
    busy = session.scalar(
        select(func.count())
        .select_from(Image)
        .where(_pending(), Image.asset_claim.is_not(None), Image.asset_next_attempt_at > now)
    )
    room = min(limit, in_flight - int(busy or 0))
    token = secrets.token_hex(16)
    if room <= 0:
        return Handover(token, [])
    due = or_(Image.asset_next_attempt_at.is_(None), Image.asset_next_attempt_at <= now)
    ids = list(
        session.scalars(
            select(Image.id)
            .where(_pending(), due)
            .order_by(Image.id)
            .limit(room)
            .with_for_update(skip_locked=True)
        )
    )
    for start in range(0, len(ids), _CHUNK):
        session.execute(
            update(Image)
            .where(Image.id.in_(ids[start : start + _CHUNK]))
            .values(asset_claim=token, asset_next_attempt_at=now + lease)
            .execution_options(synchronize_session=False)
        )
    return Handover(token, ids)


def claim(
    session: Session,
    *,
    token: str,
    image_ids: Sequence[int],
    now: datetime,
    lease: timedelta,
    retry_window: timedelta,
) -> list[AssetClaim]:
    """The rows of `image_ids` still pending under `token`, claimed for a fetch: the attempt
    counted, the lease renewed (one statement each for the whole batch). A link's expiry is its
    request's `ttl` after the image was stored (Runware: "Time-to-live (TTL) in seconds for
    generated content"), else `retry_window` after it."""
    rows = session.execute(
        select(
            Image.id,
            Image.image_uuid,
            Image.asset_attempts,
            Image.image_url,
            Image.raw,
            Image.created_at,
            Job.request,
            Job.provider,
        )
        .join(Job, Image.job_id == Job.id)
        .where(Image.id.in_(list(image_ids)), _pending(), Image.asset_claim == token)
        .order_by(Image.id)
        .with_for_update(skip_locked=True, of=Image.__table__)
    ).all()
    synchronous = sync_providers()
    claims = []
    for image_id, image_uuid, attempts, url, raw, created_at, request, provider in rows:
        request = request or {}
        ttl = request.get("ttl")
        lifetime = (
            timedelta(seconds=ttl)
            if isinstance(ttl, int) and request.get("outputType", "URL") == "URL"
            else retry_window
        )
        raw = raw if isinstance(raw, dict) else {}
        inline = next((raw[k] for k in INLINE_FIELDS if isinstance(raw.get(k), str)), None)
        claims.append(
            AssetClaim(
                image_id=image_id,
                image_uuid=str(image_uuid),
                token=token,
                attempts=attempts + 1,
                url=url,
                inline=inline,
                # A synchronous provider (Ideogram's own API) names no output format: any.
                expected_format=(
                    "" if provider in synchronous else expected_format(request.get("outputFormat"))
                ),
                expires_at=created_at + lifetime,
                raw_without_inline=(
                    {k: v for k, v in raw.items() if k not in INLINE_FIELDS} if inline else None
                ),
                unsafe=raw.get("isImageSafe") is False,
            )
        )
    if claims:
        session.execute(
            update(Image)
            .where(Image.id.in_([c.image_id for c in claims]))
            .values(
                asset_attempts=Image.asset_attempts + 1,
                asset_next_attempt_at=now + lease,
            )
            .execution_options(synchronize_session=False)
        )
    return claims


def renew(
    session: Session, claimed: Sequence[AssetClaim], *, now: datetime, lease: timedelta
) -> None:
    """Renew the lease of `claimed` (those still pending under their token) to `now + lease`:
    a batch's later downloads keep their rows while the earlier ones take long."""
    for token in {c.token for c in claimed}:
        session.execute(
            update(Image)
            .where(
                Image.id.in_([c.image_id for c in claimed if c.token == token]),
                _pending(),
                Image.asset_claim == token,
            )
            .values(asset_next_attempt_at=now + lease)
            .execution_options(synchronize_session=False)
        )


def stored_values(
    claim: AssetClaim, verified: Verified, *, key: str, now: datetime
) -> dict[str, Any]:
    """What `record` writes for an asset stored under `key` (an inline output's base64 leaves
    the row)."""
    values: dict[str, Any] = {
        "asset_status": AssetStatus.STORED.value,
        "asset_reason": None,
        "sha256": verified.sha256,
        "size_bytes": verified.size,
        "content_type": verified.content_type,
        "format": verified.format,
        "width": verified.width,
        "height": verified.height,
        "storage_key": key,
        "fetched_at": now,
        "asset_claim": None,
        "asset_next_attempt_at": None,
    }
    if claim.raw_without_inline is not None:
        values["raw"] = claim.raw_without_inline
    return values


def retry_values(*, reason: str, at: datetime) -> dict[str, Any]:
    """Still pending: due again `at` (a backoff), with the failure's reason."""
    return {"asset_reason": reason, "asset_claim": None, "asset_next_attempt_at": at}


def final_values(status: AssetStatus, *, reason: str) -> dict[str, Any]:
    """Failed or refused for good, with the reason."""
    assert status in (AssetStatus.FAILED, AssetStatus.REFUSED)
    return {
        "asset_status": status.value,
        "asset_reason": reason,
        "asset_claim": None,
        "asset_next_attempt_at": None,
    }


def record(session: Session, outcomes: Sequence[tuple[AssetClaim, dict[str, Any]]]) -> None:
    """Write each claim's outcome (`stored_values`, `retry_values` or `final_values`), only
    where the row is still pending under the claim's token: one executemany per kind of
    outcome. A claim taken over by a later hand-over changes nothing."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for claim, values in outcomes:
        groups.setdefault(tuple(sorted(values)), []).append(_params(claim, values))
    for columns, rows in groups.items():
        session.execute(_record_statement(columns), rows)


def record_stored(
    session: Session, claim: AssetClaim, verified: Verified, *, key: str, now: datetime
) -> bool:
    """One asset stored under `key`; False when the claim was taken over (someone else
    records it)."""
    return _update(session, claim, stored_values(claim, verified, key=key, now=now))


def record_retry(session: Session, claim: AssetClaim, *, reason: str, at: datetime) -> bool:
    """One asset still pending, due again `at`; False when the claim was taken over."""
    return _update(session, claim, retry_values(reason=reason, at=at))


def record_final(session: Session, claim: AssetClaim, status: AssetStatus, *, reason: str) -> bool:
    """One asset failed or refused for good; False when the claim was taken over."""
    return _update(session, claim, final_values(status, reason=reason))


def _update(session: Session, claim: AssetClaim, values: dict[str, Any]) -> bool:
    done = session.execute(_record_statement(tuple(sorted(values))), _params(claim, values))
    return bool(getattr(done, "rowcount", 0))


def _params(claim: AssetClaim, values: dict[str, Any]) -> dict[str, Any]:
    return {
        **{f"v_{name}": value for name, value in values.items()},
        "b_id": claim.image_id,
        "b_token": claim.token,
    }


@functools.cache
def _record_statement(columns: tuple[str, ...]) -> Any:
    """UPDATE of `columns` for one row still pending under its token, built once per set of
    columns (the values are bound: `v_<column>`, `b_id`, `b_token`)."""
    table = cast(Table, Image.__table__)
    return (
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.asset_status == AssetStatus.PENDING.value,
            table.c.asset_claim == bindparam("b_token"),
        )
        .values({name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns})
    )
