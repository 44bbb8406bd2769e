"""The Runware client's exception tree, and the provider's per-task error record.

The tree itself is provider-neutral and lives in ``remixq.providers.errors``; it is re-exported
here under its old names (``RunwareError`` is ``ProviderCallError``), so every import keeps working.

Callers decide what to do from the class alone: a ``TransientError`` is worth retrying (with
backoff, and the same taskUUID, which the provider deduplicates), a ``PermanentError`` fails
the job with the provider's code and message::

    RunwareError (= ProviderCallError)       .message, .status, .errors
      TransientError                         .retry_after: float | None (from Retry-After)
        ConnectionFailed                     nothing reached the provider, or the link broke
        RequestTimeout                       no answer within the read timeout (or HTTP 408)
        RateLimited                          HTTP 429
        ServerError                          HTTP 5xx, incl. 503/504 (queue full / queue wait)
      PermanentError                         .status, .errors: list[ProviderError]
        BadRequest                           HTTP 400 for the whole request
        Unauthorized                         HTTP 401
        PaymentRequired                      HTTP 402
        Forbidden                            HTTP 403
        NotFound                             HTTP 404
        UnexpectedResponse                   unparseable 2xx body, unknown status, stray errors...

A task refused on its own within an answered request is not an exception: ``RunwareClient.submit``
returns its ``ProviderError``, whose ``.transient`` makes the same split.

Messages never contain the API key or a webhook token: they are built from the status line
and the provider's error codes and messages only, and a provider's message is redacted as it is
read (remixq.security.redact), should it echo the task's ``webhookURL`` or ``uploadEndpoint``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from remixq.providers.errors import (
    AnswerLost,
    BadRequest,
    ConnectionFailed,
    Forbidden,
    NotFound,
    PaymentRequired,
    PermanentError,
    ProviderCallError,
    RateLimited,
    RequestTimeout,
    SafetyRejected,
    ServerError,
    TransientError,
    Unauthorized,
    UnexpectedResponse,
)
from remixq.providers.runware.assumptions import TRANSIENT_TASK_ERROR_CODES
from remixq.security import redact


@dataclass(frozen=True)
class ProviderError:
    """One entry of the provider's ``errors`` array (or an item with ``status: "error"``)."""

    code: str
    message: str
    parameter: str | None = None
    task_type: str | None = None
    task_uuid: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, secrets: Iterable[str] = ()) -> ProviderError:
        """Read one error object; tolerant, because error bodies are the least documented part.
        Its message is redacted (webhook tokens, URL queries, keys and `secrets`): it ends up
        in the job's error, the logs and `remixq status`."""
        # Some answers nest the details in an "error" object (runware-python's result type).
        nested = data.get("error")
        source: Mapping[str, Any] = {**nested, **data} if isinstance(nested, Mapping) else data
        return cls(
            code=_text(source.get("code")) or "unknown",
            message=redact(_text(source.get("message")) or "", secrets),
            parameter=_text(source.get("parameter")),
            task_type=_text(source.get("taskType")),
            task_uuid=_text(source.get("taskUUID")),
            raw=dict(data),
        )

    @property
    def transient(self) -> bool:
        return is_transient_code(self.code)

    def __str__(self) -> str:
        where = f" ({self.parameter})" if self.parameter else ""
        return f"{self.code}{where}: {self.message}" if self.message else f"{self.code}{where}"


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    return str(value)


def is_transient_code(code: str) -> bool:
    """True when a per-task error code is worth retrying with the same taskUUID.

    The provider documents no such split; the decision and its reasons live in
    ``assumptions.TRANSIENT_TASK_ERROR_CODES``. Unknown codes are permanent.
    """
    return code in TRANSIENT_TASK_ERROR_CODES


# The tree is provider-neutral (remixq.providers.errors); these names stay importable from here.
RunwareError = ProviderCallError

_PERMANENT_BY_STATUS: dict[int, type[PermanentError]] = {
    400: BadRequest,
    401: Unauthorized,
    402: PaymentRequired,
    403: Forbidden,
    404: NotFound,
}


def for_status(
    status: int, message: str, errors: list[ProviderError], *, retry_after: float | None
) -> RunwareError:
    """The error of a request the provider answered with HTTP `status` (not 2xx)."""
    if status == 429:
        return RateLimited(message, status=status, errors=errors, retry_after=retry_after)
    if status == 408:
        return RequestTimeout(message, status=status, errors=errors, retry_after=retry_after)
    if 500 <= status < 600:
        return ServerError(message, status=status, errors=errors, retry_after=retry_after)
    permanent = _PERMANENT_BY_STATUS.get(status, UnexpectedResponse)
    return permanent(message, status=status, errors=errors)


__all__ = [
    "AnswerLost",
    "BadRequest",
    "ConnectionFailed",
    "Forbidden",
    "NotFound",
    "PaymentRequired",
    "PermanentError",
    "ProviderCallError",
    "ProviderError",
    "RateLimited",
    "RequestTimeout",
    "RunwareError",
    "SafetyRejected",
    "ServerError",
    "TransientError",
    "Unauthorized",
    "UnexpectedResponse",
    "for_status",
    "is_transient_code",
]
