"""Celery tasks of the image assets (remixq.assets): the sweep, under beat, that hands pending
assets over, and the fetch task, on the `remixq.assets` queue, that copies them.

The sweep runs every REMIXQ_ASSET_SWEEP_INTERVAL seconds (2): an image is fetched within
seconds of its result's commit, and the webhook's request does nothing for it. The fetch task
acks late and is safe to run twice: it claims its rows under the sweep's token first, a
message's rows in one transaction (a stale or duplicated message claims nothing), the storage
is content-addressed, and the outcomes are recorded only under the token. A lost message or a
worker killed mid-download leaves its rows pending; the sweep hands them over again when their
lease (REMIXQ_ASSET_LEASE) ends.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery import Celery

from remixq.assets import claims
from remixq.assets.claims import AssetClaim
from remixq.assets.copying import Final, Outcome, Retry, RetryPolicy, Stored, copy
from remixq.db import transaction, utcnow
from worker.names import ASSET_FETCH_TASK, ASSET_SWEEP_TASK, ASSETS_QUEUE, PERIODIC_QUEUE
from worker.runtime import Runtime

log = logging.getLogger("remixq.assets")

# Assets per message: a message's downloads run one after another in one worker thread, with
# one transaction to claim them and one to record them. A sweep hands at least FETCH_BATCH to a
# message, more when it hands over more than the background pool has threads for (a backlog),
# up to MAX_FETCH_BATCH: fewer, larger transactions, which on the embedded default's SQLite (one
# writer at a time) leave the webhooks and submissions their turns.
FETCH_BATCH = 5
MAX_FETCH_BATCH = 50


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
    batch = fetch_batch(len(ids), settings.background_concurrency)
    with app.producer_or_acquire() as producer:
        for start in range(0, len(ids), batch):
            app.send_task(
                ASSET_FETCH_TASK,
                args=[handover.token, ids[start : start + batch]],
                queue=ASSETS_QUEUE,
                producer=producer,
            )
    log.info("assets handed over", extra={"images": len(ids)})
    return len(ids)


def fetch_batch(handed_over: int, threads: int) -> int:
    """Assets per message for a sweep that handed `handed_over` over, for a pool of `threads`:
    FETCH_BATCH, or an even share per thread when that is more, at most MAX_FETCH_BATCH."""
    return min(MAX_FETCH_BATCH, max(FETCH_BATCH, -(-handed_over // max(1, threads))))


def fetch(runtime: Runtime, token: str, image_ids: Sequence[int]) -> dict[str, int]:
    """Copy the assets of `image_ids` still handed over under `token`: claimed together in one
    transaction, copied one after another (the lease renewed before a download it might not
    cover, when the ones before took long), and their outcomes recorded together in another;
    counts by outcome (`skipped`: not pending under `token` any more)."""
    settings = runtime.settings
    lease = timedelta(seconds=settings.asset_lease)
    download = timedelta(seconds=settings.image_fetch_timeout)
    with transaction(runtime.sessions) as session:
        leased_until = utcnow() + lease
        claimed = claims.claim(
            session,
            token=token,
            image_ids=image_ids,
            now=leased_until - lease,
            lease=lease,
            retry_window=timedelta(seconds=settings.asset_retry_window),
        )
    counts = {"stored": 0, "retry": 0, "failed": 0, "refused": 0, "skipped": 0}
    counts["skipped"] = len(image_ids) - len(claimed)
    done: list[tuple[AssetClaim, Outcome]] = []
    try:
        for index, claim in enumerate(claimed):
            if utcnow() + download > leased_until:  # the lease might end during this download
                with transaction(runtime.sessions) as session:
                    leased_until = utcnow() + lease
                    claims.renew(session, claimed[index:], now=leased_until - lease, lease=lease)
            outcome = copy(
                claim,
                policy=runtime.fetch_policy,
                storage=runtime.storage,
                retry=RetryPolicy.of(settings),
                now=utcnow(),
            )
            done.append((claim, outcome))
    finally:  # what was copied is recorded even when a later copy raised
        if done:
            with transaction(runtime.sessions) as session:
                claims.record(
                    session, [(claim, _values(claim, outcome)) for claim, outcome in done]
                )
    for claim, outcome in done:
        counts[_logged(claim, outcome)] += 1
    return counts


def _values(claim: AssetClaim, outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Stored):
        return claims.stored_values(claim, outcome.verified, key=outcome.key, now=utcnow())
    if isinstance(outcome, Retry):
        return claims.retry_values(reason=outcome.reason, at=outcome.at)
    return claims.final_values(outcome.status, reason=outcome.reason)


def _logged(claim: AssetClaim, outcome: Outcome) -> str:
    """What became of one asset (logged unless stored)."""
    extra = {"image_id": claim.image_id, "image_uuid": claim.image_uuid, "attempt": claim.attempts}
    if isinstance(outcome, Stored):
        return "stored"
    if isinstance(outcome, Retry):
        log.info("asset fetch failed; will retry", extra={**extra, "error": outcome.reason})
        return "retry"
    assert isinstance(outcome, Final)
    log.warning("asset %s", outcome.status.value, extra={**extra, "error": outcome.reason})
    return outcome.status.value
