"""Runware's Ideogram Remix models: request schemas, the REST client and its error tree.

``schemas`` validates a user's request against the model page and builds the task to send,
``client`` sends it and polls for results, ``errors`` says which failures are worth a retry.
Points the provider's documentation leaves open are decided in ``assumptions``.
"""

from typing import TYPE_CHECKING, Any

from remixq.providers.runware.errors import (
    BadRequest,
    ConnectionFailed,
    Forbidden,
    NotFound,
    PaymentRequired,
    PermanentError,
    ProviderError,
    RateLimited,
    RequestTimeout,
    RunwareError,
    ServerError,
    TransientError,
    Unauthorized,
    UnexpectedResponse,
    is_transient_code,
)
from remixq.providers.runware.results import PollResult
from remixq.providers.runware.schemas import (
    MODEL_IDS,
    MODELS,
    Ideogram1Remix,
    Ideogram3Remix,
    Ideogram4Remix,
    RemixRequest,
    build_task,
    is_image_reference,
    parse_request,
)

__all__ = [
    "MODELS",
    "MODEL_IDS",
    "Ack",
    "AuthMode",
    "BadRequest",
    "ConnectionFailed",
    "Forbidden",
    "Ideogram1Remix",
    "Ideogram3Remix",
    "Ideogram4Remix",
    "NotFound",
    "PaymentRequired",
    "PermanentError",
    "PollResult",
    "ProviderError",
    "RateLimited",
    "RemixRequest",
    "RequestTimeout",
    "RunwareClient",
    "RunwareError",
    "ServerError",
    "TransientError",
    "Unauthorized",
    "UnexpectedResponse",
    "build_task",
    "is_image_reference",
    "is_transient_code",
    "parse_request",
]

if TYPE_CHECKING:
    from remixq.providers.runware.client import Ack, AuthMode, RunwareClient

_CLIENT_NAMES = frozenset({"Ack", "AuthMode", "RunwareClient"})


def __getattr__(name: str) -> Any:
    # The client (hence requests, urllib3 and ssl) is imported on first use only: the provider
    # seam is imported by every process, the receiver's gunicorn master included, which must not
    # import ssl before its gevent workers patch it (webhook_receiver.server).
    if name in _CLIENT_NAMES:
        from remixq.providers.runware import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
