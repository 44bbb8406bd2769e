"""Start-up checks of a worker: will the provider's webhooks reach our receiver?

The worker builds each job's webhook URL from its own settings (`Runtime.webhook_url_for`), so a
worker whose public URL is wrong sends every result of every job it submits to the wrong place:
the results then arrive only through the reconciler, minutes later. It says so loudly at start.
"""

from __future__ import annotations

import logging
import threading
import time

import requests

from remixq.config import Settings

log = logging.getLogger("remixq.worker")

HEALTH_WAIT = 30.0  # seconds: a receiver started beside the worker has this long to answer


def check_webhook_url(settings: Settings, *, wait: float = HEALTH_WAIT) -> threading.Thread:
    """Warn at once when REMIXQ_PUBLIC_URL is unset although a real provider is used, and, from
    a background thread (so the worker starts meanwhile), when the receiver's `/healthz` at that
    URL does not answer within `wait` seconds. Returns the thread."""
    base = settings.webhook_base_url
    if settings.public_url is None and not settings.uses_simulator:
        log.warning(
            "REMIXQ_PUBLIC_URL is unset: webhooks go to %s, which the provider cannot reach; "
            "set REMIXQ_PUBLIC_URL to the receiver's public base URL",
            base,
            extra={"webhook_base_url": base},
        )
    thread = threading.Thread(
        target=_watch_health, args=(base, wait), name="remixq-webhook-check", daemon=True
    )
    thread.start()
    return thread


def _watch_health(base: str, wait: float) -> None:
    url = f"{base}/healthz"
    deadline = time.monotonic() + wait
    error = "no answer"
    while True:
        try:
            answer = requests.get(url, timeout=2.0, allow_redirects=False)
        except requests.RequestException as exc:
            error = type(exc).__name__
        else:
            if answer.status_code == 200:
                return
            error = f"HTTP {answer.status_code}"
        if time.monotonic() >= deadline:
            break
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    log.warning(
        "the webhook receiver at %s does not answer (%s): webhooks of the jobs this worker "
        "submits will not arrive; set REMIXQ_PUBLIC_URL (or REMIXQ_RECEIVER_PORT) to where "
        "the receiver listens",
        url,
        error,
        extra={"webhook_base_url": base},
    )
