"""Ideogram's own "Remix with Ideogram 3.0" API (page 004): request schema, client, seam.

``schemas`` validates a request in Ideogram's own field names and builds what a job stores,
``client`` sends it (multipart, synchronous) and maps every failure onto
``remixq.providers.errors``, ``provider`` plugs both into ``remixq.providers``. Points the
page leaves open are decided in ``assumptions``.
"""

from typing import TYPE_CHECKING, Any

from remixq.providers.ideogram.assumptions import MODEL_ID
from remixq.providers.ideogram.schemas import RemixRequest, build_request, parse_request

if TYPE_CHECKING:
    from remixq.providers.ideogram.client import IdeogramClient, RemixAnswer, RemixItem

_CLIENT_NAMES = frozenset({"IdeogramClient", "RemixAnswer", "RemixItem"})


def __getattr__(name: str) -> Any:
    # The client (hence requests, urllib3 and ssl) is imported on first use only: the seam is
    # imported by every process, the receiver's gunicorn master included, which must not import
    # ssl before its gevent workers patch it (webhook_receiver.server).
    if name in _CLIENT_NAMES:
        from remixq.providers.ideogram import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MODEL_ID",
    "IdeogramClient",
    "RemixAnswer",
    "RemixItem",
    "RemixRequest",
    "build_request",
    "parse_request",
]
