"""Per-job webhook tokens.

Runware does not sign webhooks (../shared/spec/runware-platform.md §2): authenticity can only come
from a secret in the webhook URL. Each job's URL carries its taskUUID and an HMAC of it under
REMIXQ_WEBHOOK_SECRET, so a leaked URL authorises results for that one task only, and the receiver
checks it in constant time without a database read. URLs issued before the token moved into the
path (`?task=...&token=...`) are still accepted.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from remixq.config import Settings

WEBHOOK_PATH = "/webhooks/runware"  # + /<taskUUID>/<token>; ?task=&token= is still accepted


def webhook_token(secret: bytes, task_uuid: str) -> str:
    return hmac.new(secret, task_uuid.lower().encode(), hashlib.sha256).hexdigest()


def verify_webhook_token(secret: bytes, task_uuid: str, token: str) -> bool:
    return hmac.compare_digest(webhook_token(secret, task_uuid), token)


def webhook_url(base_url: str, secret: bytes, task_uuid: str) -> str:
    """The job's webhook URL: its taskUUID and token in the path (a UUID and a hex digest need
    no escaping, and the receiver's router reads them without parsing a query string)."""
    token = webhook_token(secret, task_uuid)
    return f"{base_url.rstrip('/')}{WEBHOOK_PATH}/{task_uuid}/{token}"


def webhook_url_for(settings: Settings) -> Callable[[str], str]:
    """The per-job webhook URL maker: the receiver's public URL and a token for the task."""
    secret, base = settings.secret(), settings.webhook_base_url
    return lambda task_uuid: webhook_url(base, secret, task_uuid)
