"""Ideogram's own "Remix with Ideogram 3.0" API (page 004): request schema, client, seam.

``schemas`` validates a request in Ideogram's own field names and builds what a job stores,
``client`` sends it (multipart, synchronous) and maps every failure onto
``remixq.providers.errors``, ``provider`` plugs both into ``remixq.providers``. Points the
page leaves open are decided in ``assumptions``.
"""

from remixq.providers.ideogram.assumptions import MODEL_ID
from remixq.providers.ideogram.client import IdeogramClient, RemixAnswer, RemixItem
from remixq.providers.ideogram.schemas import RemixRequest, build_request, parse_request

__all__ = [
    "MODEL_ID",
    "IdeogramClient",
    "RemixAnswer",
    "RemixItem",
    "RemixRequest",
    "build_request",
    "parse_request",
]
