"""Celery tasks of the image assets (remixq.assets): the sweep, under beat, that hands pending
assets over, and the fetch task, on the `remixq.assets` queue, that copies them.

The sweep runs every REMIXQ_ASSET_SWEEP_INTERVAL seconds (2): an image is fetched within
seconds of its result's commit, and the webhook's request does nothing for it. The fetch task
acks late and is safe to run twice: it claims its rows under the sweep's token first (a stale
or duplicated message claims nothing), the storage is content-addressed, and the outcome is
recorded only under the token. A lost message or a worker killed mid-download leaves its rows
pending; the sweep hands them over again when their lease (REMIXQ_ASSET_LEASE) ends.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from celery import Celery

from remixq.assets import claims
from remixq.assets.copying import Final, Retry, RetryPolicy, Stored, copy
from remixq.db import transaction, utcnow
from worker.names import ASSET_FETCH_TASK, ASSET_SWEEP_TASK, ASSETS_QUEUE, PERIODIC_QUEUE
from worker.runtime import Runtime

log = logging.getLogger("remixq.assets")

# Assets per message: a message's downloads run one after another in one worker thread.
FETCH_BATCH = 5


def register(app: Celery, runtime: Runtime) -> None:
    settings = runtime.settings

    # Not shared, as the submission task (worker.tasks.register).
    @app.task(name=ASSET_SWEEP_TASK, ignore_result=True, shared=False)
    def asset_sweep_tick() -> int:
        return sweep(app, runtime)

    @app.task(name=ASSET_FETCH_TASK, ignore_result=True, acks_late=True, shared=False)
    def fetch_assets(token: str, image_ids: list[int]) -> dict[str, int]:
        return fetch(runtime, token, image_ids)

    app.conf.beat_schedule["asset-sweep"] = {
        "task": ASSET_SWEEP_TASK,
        "schedule": settings.asset_sweep_interval,
        "options": {"expires": settings.asset_sweep_interval, "queue": PERIODIC_QUEUE},
    }


def sweep(app: Celery, runtime: Runtime) -> int:
    """Hand the due pending assets to the fetch task (after the commit); returns how many."""
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        handover = claims.hand_over(
            session,
            now=utcnow(),
            lease=timedelta(seconds=settings.asset_lease),
            in_flight=settings.asset_in_flight,
        )
    ids = handover.image_ids
    if not ids:
        return 0
    with app.producer_or_acquire() as producer:
        for start in range(0, len(ids), FETCH_BATCH):
            app.send_task(
                ASSET_FETCH_TASK,
                args=[handover.token, ids[start : start + FETCH_BATCH]],
                queue=ASSETS_QUEUE,
                producer=producer,
            )
    log.info("assets handed over", extra={"images": len(ids)})
    return len(ids)


def fetch(runtime: Runtime, token: str, image_ids: Sequence[int]) -> dict[str, int]:
    """Copy the assets of `image_ids` still handed over under `token`, one after another, each
    claimed just before its download (so that its lease covers that download alone); counts
    by outcome."""
    counts = {"stored": 0, "retry": 0, "failed": 0, "refused": 0, "skipped": 0}
    for image_id in image_ids:
        counts[copy_one(runtime, token, image_id)] += 1
    return counts


def copy_one(runtime: Runtime, token: str, image_id: int) -> str:
    """Claim, copy and record one asset; returns what became of it (`skipped`: not pending
    under `token` any more)."""
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        claimed = claims.claim(
            session,
            token=token,
            image_ids=[image_id],
            now=utcnow(),
            lease=timedelta(seconds=settings.asset_lease),
            retry_window=timedelta(seconds=settings.asset_retry_window),
        )
    if not claimed:
        return "skipped"
    (claim,) = claimed
    outcome = copy(
        claim,
        policy=runtime.fetch_policy,
        storage=runtime.storage,
        retry=RetryPolicy.of(settings),
        now=utcnow(),
    )
    with transaction(runtime.sessions) as session:
        if isinstance(outcome, Stored):
            claims.record_stored(session, claim, outcome.verified, key=outcome.key, now=utcnow())
        elif isinstance(outcome, Retry):
            claims.record_retry(session, claim, reason=outcome.reason, at=outcome.at)
        else:
            claims.record_final(session, claim, outcome.status, reason=outcome.reason)
    extra = {"image_id": claim.image_id, "image_uuid": claim.image_uuid, "attempt": claim.attempts}
    if isinstance(outcome, Stored):
        return "stored"
    if isinstance(outcome, Retry):
        log.info("asset fetch failed; will retry", extra={**extra, "error": outcome.reason})
        return "retry"
    assert isinstance(outcome, Final)
    log.warning("asset %s", outcome.status.value, extra={**extra, "error": outcome.reason})
    return outcome.status.value
