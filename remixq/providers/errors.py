"""The one exception tree of every provider client.

Callers decide what to do from the class alone, whichever provider answered: a
``TransientError`` is worth retrying (with backoff), a ``PermanentError`` fails the job with
the provider's words::

    ProviderCallError(Exception)             .message, .status, .errors
      TransientError                         .retry_after: float | None (from Retry-After)
        ConnectionFailed                     nothing reached the provider, or the link broke
        RequestTimeout                       no answer within the read timeout (or HTTP 408)
        RateLimited                          HTTP 429
        ServerError                          HTTP 5xx, incl. 503/504
        AnswerLost                           the request was sent and no answer came back: the
                                             call MAY have been charged (a provider without an
                                             idempotency key, e.g. Ideogram's own API)
      PermanentError                         .status, .errors
        BadRequest                           HTTP 400 for the whole request
        Unauthorized                         HTTP 401
        PaymentRequired                      HTTP 402
        Forbidden                            HTTP 403
        NotFound                             HTTP 404
        SafetyRejected                       Ideogram's HTTP 422: the prompt or an image failed
                                             the safety check (``.message``: the body's "error")
        UnexpectedResponse                   unparseable 2xx body, unknown status, ...

``.errors`` holds the provider's own error records when its answer has any (Runware:
``remixq.providers.runware.errors.ProviderError``), an empty list otherwise.

Messages never contain an API key or a webhook token: each client builds them from the status
line and the provider's codes and messages only (redacted with remixq.security.redact).
``remixq.providers.runware.errors`` re-exports these classes under their old names
(``RunwareError`` is ``ProviderCallError``).
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any


class ProviderCallError(Exception):
    """Base of every error a provider client raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: Iterable[Any] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors: list[Any] = list(errors)


class TransientError(ProviderCallError):
    """Worth retrying later (Runware: with the same taskUUID, which the provider deduplicates)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: Iterable[Any] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, errors=errors)
        self.retry_after = retry_after


class ConnectionFailed(TransientError):
    """The connection could not be made or broke before a full answer arrived."""


class RequestTimeout(TransientError):
    """The provider did not answer within the read timeout."""


class RateLimited(TransientError):
    """HTTP 429: the provider's queue is over capacity."""


class ServerError(TransientError):
    """HTTP 5xx, including 503 (temporary capacity) and 504 (queue wait exceeded)."""


class AnswerLost(TransientError):
    """The request went out whole and its answer never came (a read timeout, a connection cut
    mid-answer). A provider without an idempotency key may have done, and charged, the work:
    retrying is a conscious choice, never a blind one."""


class PermanentError(ProviderCallError):
    """Retrying the same request will not help; fail the job with the provider's words."""


class BadRequest(PermanentError):
    """HTTP 400 for the request as a whole."""


class Unauthorized(PermanentError):
    """HTTP 401: no valid API key."""


class PaymentRequired(PermanentError):
    """HTTP 402: the account balance is insufficient."""


class Forbidden(PermanentError):
    """HTTP 403: the key lacks permission."""


class NotFound(PermanentError):
    """HTTP 404: wrong endpoint URL."""


class SafetyRejected(PermanentError):
    """HTTP 422 from Ideogram: the prompt or a provided image failed the safety check.
    ``.message`` is the provider's own "error" text."""


class UnexpectedResponse(PermanentError):
    """An answer outside the contract: unparseable body, unknown status, errors naming no task."""


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
