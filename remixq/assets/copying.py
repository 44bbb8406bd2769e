"""Making one asset's copy: its bytes fetched (or an inline output decoded), verified, stored;
and what to record when that fails: a refusal or a permanent failure for good, a transient one
retried with backoff while the link lives and attempts remain.

No database here: the worker claims (`remixq.assets.claims`), calls `copy`, and records the
outcome it returns, each step in its own short transaction, the fetch outside any of them.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from remixq.assets.claims import AssetClaim
from remixq.assets.fetch import Gone, Unavailable, fetch
from remixq.assets.policy import FetchPolicy, Refused
from remixq.assets.storage import Storage, content_key
from remixq.assets.verify import NotAnImage, Verified, verify
from remixq.config import Settings
from remixq.states import AssetStatus

_DATA_URI = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(?P<payload>.*)", re.DOTALL)


@dataclass(frozen=True)
class Stored:
    verified: Verified
    key: str
    written: bool  # False: the same bytes were stored already (content-addressed)


@dataclass(frozen=True)
class Retry:
    reason: str
    at: datetime


@dataclass(frozen=True)
class Final:
    status: AssetStatus  # failed or refused
    reason: str


Outcome = Stored | Retry | Final


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures are retried with exponential backoff (equal jitter, a cap) until
    the link expires or `max_attempts` were made."""

    max_attempts: int = 10
    base: float = 2.0
    cap: float = 300.0

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.asset_max_attempts, settings.asset_backoff_base, settings.asset_backoff_cap
        )

    def delay(self, attempts: int) -> float:
        delay: float = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        return delay / 2 + random.uniform(0, delay / 2)


def copy(
    claim: AssetClaim,
    *,
    policy: FetchPolicy,
    storage: Storage,
    retry: RetryPolicy,
    now: datetime,
) -> Outcome:
    """Fetch or decode, verify and store one claimed asset; what to record."""
    if claim.inline is not None:
        try:
            verified = verify(_decoded(claim.inline), claim.expected_format)
        except (NotAnImage, ValueError) as exc:
            # The bytes are in the row and will not change: retrying cannot help.
            return Final(AssetStatus.FAILED, f"the inline output: {_reason(exc)}")
    elif claim.url:
        try:
            verified = verify(fetch(claim.url, policy).body, claim.expected_format)
        except Refused as exc:
            return Final(AssetStatus.REFUSED, exc.reason)
        except Gone as exc:
            return Final(AssetStatus.FAILED, exc.reason)
        except (Unavailable, NotAnImage) as exc:
            return later(claim, exc.reason, retry=retry, now=now)
    elif claim.unsafe:
        return Final(
            AssetStatus.FAILED,
            "the provider withheld the image as unsafe (is_image_safe false): it has no URL",
        )
    else:
        return Final(AssetStatus.FAILED, "the result carries no imageURL and no inline image")
    key = content_key(verified.sha256, verified.extension)
    try:
        written = storage.put(key, verified.data, verified.content_type)
    except Exception as exc:  # noqa: BLE001 (a folder or a bucket fails in many ways: transient)
        reason = f"storing failed: {type(exc).__name__}: {exc}"[:500]
        return later(claim, reason, retry=retry, now=now)
    return Stored(verified, key, written)


def later(claim: AssetClaim, reason: str, *, retry: RetryPolicy, now: datetime) -> Outcome:
    """A transient failure: retried after a backoff, unless the link has expired or the
    attempts are spent (then it failed, with the reason)."""
    if now >= claim.expires_at:
        return Final(
            AssetStatus.FAILED,
            f"the link expired ({claim.expires_at.isoformat(timespec='seconds')}) before a copy"
            f" was made; last attempt: {reason}",
        )
    if claim.attempts >= retry.max_attempts:
        return Final(AssetStatus.FAILED, f"gave up after {claim.attempts} attempts: {reason}")
    at = min(now + timedelta(seconds=retry.delay(claim.attempts)), claim.expires_at)
    return Retry(reason, at)


def _decoded(inline: str) -> bytes:
    match = _DATA_URI.fullmatch(inline)
    payload = match["payload"] if match else inline
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid base64") from None


def _reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, NotAnImage) else str(exc)
