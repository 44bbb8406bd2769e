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
import re
from collections.abc import Callable, Iterable

from remixq.config import Settings

WEBHOOK_PATH = "/webhooks/runware"  # + /<taskUUID>/<token>; ?task=&token= is still accepted


def webhook_token(secret: bytes, task_uuid: str) -> str:
    return hmac.new(secret, task_uuid.lower().encode(), hashlib.sha256).hexdigest()


def verify_webhook_token(secret: bytes, task_uuid: str, token: str) -> bool:
    """Constant-time; compared as bytes, so that any token a URL can carry (non-ASCII
    included) is simply wrong rather than an error (`compare_digest` refuses non-ASCII str)."""
    expected = webhook_token(secret, task_uuid).encode()
    return hmac.compare_digest(expected, token.encode("utf-8", "surrogateescape"))


def webhook_url(base_url: str, secret: bytes, task_uuid: str) -> str:
    """The job's webhook URL: its taskUUID and token in the path (a UUID and a hex digest need
    no escaping, and the receiver's router reads them without parsing a query string)."""
    token = webhook_token(secret, task_uuid)
    return f"{base_url.rstrip('/')}{WEBHOOK_PATH}/{task_uuid}/{token}"


def webhook_url_for(settings: Settings) -> Callable[[str], str]:
    """The per-job webhook URL maker: the receiver's public URL and a token for the task."""
    secret, base = settings.secret(), settings.webhook_base_url
    return lambda task_uuid: webhook_url(base, secret, task_uuid)


# -- redaction ---------------------------------------------------------------------------------
# A webhook URL authorises results for its task, and an upload URL's query is a presigned
# signature: neither may reach a log line, an error message or a terminal. `redact` is the one
# rule, applied by remixq.logs to every line our processes log (Celery's and gunicorn's included,
# webhook_receiver.gunicorn_logs) and to the provider's error messages
# (remixq.providers.runware.errors). The taskUUID of a webhook path stays: it is no secret and
# it is what an operator searches for.

REDACTED = "[redacted]"

_STOP = r"\s\"'<>`"  # where a URL written in a log line, a repr or JSON text ends
# What follows a webhook path's prefix, wherever the path appears (a URL, gunicorn's "Error
# handling request POST /webhooks/runware/<task>/<token>", a repr): the taskUUID (a UUID-like
# first segment) stays, everything after it goes; without one, everything after the prefix.
_WEBHOOK_TOKEN = re.compile(rf"({re.escape(WEBHOOK_PATH)}/(?:[0-9A-Fa-f-]{{1,36}}/)?)[^?#{_STOP}]+")
# The query of an absolute URL (an upload endpoint's presigned signature, the older webhook
# form), and of a webhook path written without its origin.
_URL_QUERY = re.compile(
    rf"(?i)(\b[a-z][a-z0-9+.-]*://[^?#{_STOP}]+|{re.escape(WEBHOOK_PATH)}[^?#{_STOP}]*)\?[^#{_STOP}]*"
)
# Credentials written as `name=value` or `name: value` outside a URL: query parameters quoted
# alone, headers, JSON and Python reprs of request bodies.
_NAMED = re.compile(
    r"(?i)(\b(?:token|api[_-]?key|apikey|signature|x-amz-signature|x-goog-signature|sig"
    r"|access_token|webhook_secret)\b[\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+"
)
_NAMED_WORDS = ("token", "key", "sig", "secret")  # what every name of _NAMED contains
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',}]+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without webhook tokens, URL queries, bearer keys, credentials written as
    `name=value` (token, apiKey, signature...) and the literal `secrets` given (the configured
    API key and webhook secret)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    # Each pattern runs only when its anchor is in the line: most lines have none, and the
    # scans cost tens of microseconds each (docs/security.md).
    if WEBHOOK_PATH in text:
        text = _WEBHOOK_TOKEN.sub(rf"\g<1>{REDACTED}", text)
    if "?" in text:
        text = _URL_QUERY.sub(rf"\g<1>?{REDACTED}", text)
    lower = text.lower()
    if "bearer" in lower:
        text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    if any(word in lower for word in _NAMED_WORDS):
        text = _NAMED.sub(rf"\g<1>{REDACTED}", text)
    return text
