"""Periodic work run under Celery beat: the relay and the reconciler.

Both are safe to run on several machines at once (their domain functions claim rows with
`FOR UPDATE SKIP LOCKED`), and both are bounded per round so that one tick never floods the
broker or the provider.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Celery

from remixq import reconcile, relay
from remixq.db import transaction
from remixq.providers.runware import RunwareError
from worker.names import RECONCILE_TASK, RELAY_TASK
from worker.producer import publish
from worker.runtime import Runtime

log = logging.getLogger("remixq.periodic")


def register(app: Celery, runtime: Runtime) -> None:
    settings = runtime.settings

    # Not shared, as the submission task (worker.tasks.register).
    @app.task(name=RELAY_TASK, ignore_result=True, shared=False)
    def relay_tick() -> int:
        return relay_lost_jobs(app, runtime)

    @app.task(name=RECONCILE_TASK, ignore_result=True, shared=False)
    def reconcile_tick() -> int:
        return reconcile_jobs(runtime)

    app.conf.beat_schedule = {
        "relay": {
            "task": RELAY_TASK,
            "schedule": settings.relay_interval,
            "options": {"expires": settings.relay_interval},
        },
        "reconcile": {
            "task": RECONCILE_TASK,
            "schedule": settings.reconcile_interval,
            "options": {"expires": settings.reconcile_interval},
        },
    }


def relay_lost_jobs(app: Celery, runtime: Runtime) -> int:
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        ids = relay.take_lost_jobs(
            session,
            pending_grace=timedelta(seconds=settings.relay_pending_grace),
            queued_stale=timedelta(seconds=settings.relay_queued_stale),
            claim_lease=timedelta(seconds=settings.claim_lease_seconds),
        )
    if ids:
        publish(app, ids, batch=settings.submit_batch)
        log.info("relayed jobs", extra={"jobs": len(ids)})
    return len(ids)


def reconcile_jobs(runtime: Runtime) -> int:
    """Ask getResponse about submitted jobs without news; returns the images recovered."""
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        expired = reconcile.expire_old(session, max_age=timedelta(seconds=settings.job_max_age))
        due = reconcile.take_due(
            session,
            reconcile_after=timedelta(seconds=settings.reconcile_after),
            cap=timedelta(seconds=settings.reconcile_backoff_cap),
            limit=settings.reconcile_batch,
        )
    if expired:
        log.warning("jobs expired", extra={"jobs": expired})
    recovered = 0
    for job in due:
        try:
            with runtime.limit.permit(timeout=30):
                poll = runtime.client.get_response(job.task_uuid)
        except RunwareError as exc:
            log.info(
                "getResponse failed; will ask again later",
                extra={"job_id": job.job_id, "task_uuid": job.task_uuid, "error": str(exc)},
            )
            continue
        if poll.deferred:
            log.info(
                "getResponse reported errors that fail nothing; will ask again later",
                extra={
                    "job_id": job.job_id,
                    "task_uuid": job.task_uuid,
                    "error": "; ".join(str(e) for e in poll.deferred),
                },
            )
        with transaction(runtime.sessions) as session:
            outcome = reconcile.apply_poll(session, poll)
        if outcome is not None:
            recovered += outcome.images_stored
            log.info(
                "reconciled",
                extra={
                    "job_id": job.job_id,
                    "task_uuid": job.task_uuid,
                    "images": outcome.images_stored,
                    "check": job.checks,
                },
            )
    return recovered
