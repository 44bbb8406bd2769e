"""Per-job webhook tokens.

Runware does not sign webhooks (../shared/spec/runware-platform.md §2): authenticity can only come
from a secret in the webhook URL. Each job's URL carries its taskUUID and an HMAC of it under
REMIXQ_WEBHOOK_SECRET, so a leaked URL authorises results for that one task only, and the receiver
checks it in constant time without a database read.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

WEBHOOK_PATH = "/webhooks/runware"


def webhook_token(secret: bytes, task_uuid: str) -> str:
    return hmac.new(secret, task_uuid.lower().encode(), hashlib.sha256).hexdigest()


def verify_webhook_token(secret: bytes, task_uuid: str, token: str) -> bool:
    return hmac.compare_digest(webhook_token(secret, task_uuid), token)


def webhook_url(base_url: str, secret: bytes, task_uuid: str) -> str:
    query = urlencode({"task": task_uuid, "token": webhook_token(secret, task_uuid)})
    return f"{base_url.rstrip('/')}{WEBHOOK_PATH}?{query}"
