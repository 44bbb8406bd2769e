"""Webhook POSTs and upload PUTs, with the faults and the retry schedule Runware documents.

A webhook is retried after a non-2xx answer, a connection error or a timeout, with the backoff
of assumptions A7 (250 ms doubling to an 8 s cap, jittered), up to ``webhook_retries`` times.
Retries wait in the scheduler's heap, not in a thread. Drop and duplicate faults are decided
per POST; envelopes are chosen by the caller.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from simulator.config import FaultKnobs
from simulator.faults import Faults
from simulator.scheduler import Scheduler
from simulator.stats import Stats
from simulator.targets import shown

log = logging.getLogger(__name__)

USER_AGENT = "remixq-runware-simulator"


def make_session(pool_size: int) -> requests.Session:
    """A session whose connection pool is as large as the worker pool using it."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=16, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass
class _Delivery:
    url: str
    body: dict[str, Any]
    task_uuid: str
    epoch: int
    knobs: FaultKnobs  # the knobs when the delivery started: one schedule per delivery
    attempts: int = 0


class WebhookSender:
    """Posts webhook bodies (and PUTs uploads) from the scheduler's worker threads."""

    def __init__(
        self,
        scheduler: Scheduler,
        session: requests.Session,
        stats: Stats,
        faults: Faults,
        is_current: Callable[[int], bool],
    ) -> None:
        self._scheduler = scheduler
        self._session = session
        self._stats = stats
        self._faults = faults
        self._is_current = is_current

    def send(
        self, url: str, body: dict[str, Any], task_uuid: str, epoch: int, *, inline: bool
    ) -> None:
        """Deliver ``body`` to ``url``; ``inline`` makes the first attempt in this thread."""
        knobs = self._faults.knobs
        if self._faults.chance(knobs.webhook_drop_rate):
            self._stats.webhook("dropped")
            return
        copies = 1
        if self._faults.chance(knobs.webhook_duplicate_rate):
            self._stats.webhook("duplicated")
            copies = 2
        delay_s = knobs.webhook_delay_ms / 1000.0
        for _ in range(copies):
            delivery = _Delivery(url, body, task_uuid, epoch, knobs)
            if inline:
                # Before-ack delivery: the submit answer waits for this, delay included.
                time.sleep(delay_s)
                self._attempt(delivery)
            else:
                self._scheduler.call_later(delay_s, functools.partial(self._attempt, delivery))

    def upload(self, url: str, data: bytes, mime_type: str, epoch: int) -> None:
        """One PUT of the raw image bytes (assumptions A6: not retried)."""
        if not self._is_current(epoch):
            return
        self._stats.upload("attempted")
        try:
            response = self._session.put(
                url,
                data=data,
                headers={"Content-Type": mime_type},
                timeout=self._faults.knobs.webhook_timeout_s,
            )
            ok = response.ok
        except requests.RequestException as exc:
            # The URL's query is a presigned signature and requests' message repeats it.
            log.info("upload to %s failed: %s", shown(url), type(exc).__name__)
            ok = False
        self._stats.upload("succeeded" if ok else "failed")

    def _attempt(self, delivery: _Delivery) -> None:
        if not self._is_current(delivery.epoch):
            return
        delivery.attempts += 1
        self._stats.webhook("attempted")
        try:
            response = self._session.post(
                delivery.url, json=delivery.body, timeout=delivery.knobs.webhook_timeout_s
            )
            ok = 200 <= response.status_code < 300
            outcome = str(response.status_code)
        except requests.RequestException as exc:
            ok, outcome = False, type(exc).__name__
        if ok:
            self._stats.webhook("succeeded", delivery.task_uuid)
            return
        self._stats.webhook("failed")
        if delivery.attempts > delivery.knobs.webhook_retries:
            self._stats.webhook("gave_up")
            log.warning(
                "webhook for task %s to %s given up after %d attempts (last: %s)",
                delivery.task_uuid,
                shown(delivery.url),  # the path holds the receiver's token (A15)
                delivery.attempts,
                outcome,
            )
            return
        self._stats.webhook("retried")
        delay_s = self._faults.backoff_s(delivery.knobs, delivery.attempts)
        self._scheduler.call_later(delay_s, lambda: self._attempt(delivery))
