"""Periodic work run under Celery beat: the relay, the reconciler, the failover round, the
account probe, the inbox's prune and the schedules' firing rounds.

Both are safe to run on several machines at once (their domain functions claim rows with
`FOR UPDATE SKIP LOCKED`), and both are bounded per round so that one tick never floods the
broker or the provider.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from celery import Celery

from remixq import failover, inbox, jobs, logs, native, reconcile, relay
from remixq import metrics as m
from remixq.db import transaction
from remixq.ingest import Limits
from remixq.pricing import PriceTable
from remixq.providers.runware import (
    Forbidden,
    PaymentRequired,
    RunwareError,
    TransientError,
    Unauthorized,
)
from remixq.schedules.firing import fire_due
from remixq.schedules.sources import Rules
from worker import native as worker_native
from worker.broker import messages_held
from worker.names import (
    ACCOUNT_PROBE_TASK,
    FAILOVER_TASK,
    INBOX_PRUNE_TASK,
    NATIVE_QUEUE,
    PERIODIC_QUEUE,
    QUEUE,
    RECONCILE_TASK,
    RELAY_TASK,
    SCHEDULES_TASK,
)
from worker.observed import provider_call, waited_permit
from worker.producer import enqueue, publish
from worker.ratelimit import LimitTimeout
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

    @app.task(name=FAILOVER_TASK, ignore_result=True, shared=False)
    def failover_tick() -> int:
        return fail_over_jobs(app, runtime)

    @app.task(name=ACCOUNT_PROBE_TASK, ignore_result=True, shared=False)
    def account_probe_tick() -> int:
        return probe_account(app, runtime)

    @app.task(name=INBOX_PRUNE_TASK, ignore_result=True, shared=False)
    def inbox_prune_tick() -> int:
        return prune_inbox(runtime)

    @app.task(name=SCHEDULES_TASK, ignore_result=True, shared=False)
    def schedules_tick() -> int:
        return fire_schedules(app, runtime)

    app.conf.beat_schedule = {
        "relay": {
            "task": RELAY_TASK,
            "schedule": settings.relay_interval,
            "options": {"expires": settings.relay_interval, "queue": PERIODIC_QUEUE},
        },
        "reconcile": {
            "task": RECONCILE_TASK,
            "schedule": settings.reconcile_interval,
            "options": {"expires": settings.reconcile_interval, "queue": PERIODIC_QUEUE},
        },
        "failover": {
            "task": FAILOVER_TASK,
            "schedule": settings.reconcile_interval,
            "options": {"expires": settings.reconcile_interval, "queue": PERIODIC_QUEUE},
        },
        "schedules": {
            "task": SCHEDULES_TASK,
            "schedule": settings.schedule_interval,
            "options": {"expires": settings.schedule_interval, "queue": PERIODIC_QUEUE},
        },
    }
    if settings.account_probe_interval > 0:
        app.conf.beat_schedule["account-probe"] = {
            "task": ACCOUNT_PROBE_TASK,
            "schedule": settings.account_probe_interval,
            "options": {"expires": settings.account_probe_interval, "queue": PERIODIC_QUEUE},
        }
    if settings.inbox_prune_interval > 0:
        app.conf.beat_schedule["inbox-prune"] = {
            "task": INBOX_PRUNE_TASK,
            "schedule": settings.inbox_prune_interval,
            "options": {"expires": settings.inbox_prune_interval, "queue": PERIODIC_QUEUE},
        }


def relay_lost_jobs(app: Celery, runtime: Runtime) -> int:
    """Publish again the jobs lost between the database and the broker; returns how many.

    A queued job is weighed against the messages the broker holds for the submission queue
    (`remixq.relay`): a message a worker has held unacknowledged for longer than
    REMIXQ_RELAY_QUEUED_STALE is presumed to belong to a dead worker.
    """
    settings = runtime.settings
    queued_stale = timedelta(seconds=settings.relay_queued_stale)
    native_lease = timedelta(seconds=settings.native_claim_lease_seconds)
    with transaction(runtime.sessions) as session:
        lost_calls = native.take_lost_calls(session, lease=native_lease)
    again = []  # the lost answers the policy calls again (REMIXQ_IDEOGRAM_LOST_ANSWER=retry)
    for call in lost_calls:  # their workers died mid-call: the lost-answer policy, not a relay
        with logs.bound(job_id=call.job_id, task_uuid=call.task_uuid):
            done = worker_native.lost(None, runtime, call, why="its worker stopped mid-call")
        if done.get("action") == "retry":
            again.append(call.job_id)
    if again:
        publish(app, again, batch=1, native_ids=set(again))
    with transaction(runtime.sessions) as session:
        ids = relay.take_lost_jobs(
            session,
            pending_grace=timedelta(seconds=settings.relay_pending_grace),
            queued_stale=queued_stale,
            claim_lease=timedelta(seconds=settings.claim_lease_seconds),
            broker_messages=lambda: messages_held(
                app,
                QUEUE,
                held_within=queued_stale,
                carrying=lambda job_ids: relay.queued_among(session, job_ids),
            ),
            batch=settings.submit_batch,
            native_lease=native_lease,
            native_messages=lambda: messages_held(
                app,
                NATIVE_QUEUE,
                held_within=queued_stale,
                carrying=lambda job_ids: relay.queued_among(session, job_ids),
            ),
        )
        native_ids = native.among(session, ids)
    if ids:
        publish(app, ids, batch=settings.submit_batch, native_ids=native_ids)
        m.RELAYED.inc(len(ids))
        log.info("relayed jobs", extra={"jobs": len(ids)})
    return len(ids)


def fire_schedules(app: Celery, runtime: Runtime) -> int:
    """Fire the schedules' due occurrences (`remixq.schedules.firing`: each one's campaign made
    in one transaction, exactly once whatever the number of beats), then hand their jobs to
    the broker; returns how many occurrences fired."""
    settings = runtime.settings
    done = fire_due(
        runtime.sessions,
        rules=Rules.of(settings),
        prices=PriceTable.configured(settings),
        late_after=timedelta(seconds=settings.schedule_late_after),
        enqueue=lambda sessions, ids: enqueue(app, sessions, ids, batch=settings.submit_batch),
    )
    for fired in done.fired:
        extra: dict[str, object] = {
            "schedule": fired.schedule,
            "occurrence_at": fired.occurrence_at.isoformat(),
            "reason": fired.reason,
        }
        if fired.campaign_id is None:
            log.warning("schedule occurrence not fired", extra=extra)
            continue
        extra |= {"campaign_id": fired.campaign_id, "jobs": len(fired.job_ids)}
        if fired.broker_error is not None:
            extra["broker_error"] = fired.broker_error
        log.info("schedule occurrence fired", extra=extra)
    if done.skipped:
        log.warning("schedule occurrences skipped", extra={"occurrences": done.skipped})
    for error in done.errors:
        log.warning("schedule not fired", extra={"error": error})
    return sum(1 for fired in done.fired if fired.campaign_id is not None)


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
        m.EXPIRED.inc(expired)
        log.warning("jobs expired", extra={"jobs": expired})
    recovered = 0
    for job in due:
        with logs.bound(job_id=job.job_id, task_uuid=job.task_uuid):
            recovered += _reconcile_one(runtime, job)
    return recovered


def _reconcile_one(runtime: Runtime, job: reconcile.Due) -> int:
    """Poll one job and store what the answer says; returns the images it stored. Its log
    lines carry the job (bound by the caller)."""
    settings = runtime.settings
    try:
        with waited_permit(runtime, timeout=30), provider_call(runtime, "get_response"):
            poll = runtime.client.get_response(job.task_uuid)
    except (RunwareError, LimitTimeout) as exc:
        m.RECONCILER_POLLS.labels("failed").inc()
        log.info("getResponse failed; will ask again later", extra={"error": str(exc)})
        return 0
    poll = reconcile.settle(poll, check=job.checks, final_from=settings.reconcile_final_check)
    m.RECONCILER_POLLS.labels("deferred" if poll.deferred else "answered").inc()
    if poll.deferred:
        log.info(
            "getResponse reported errors that fail nothing; will ask again later",
            extra={"error": "; ".join(str(e) for e in poll.deferred)},
        )
    with transaction(runtime.sessions) as session:
        outcome = reconcile.apply_poll(session, poll, limits=Limits.of(settings))
    if outcome is None:
        return 0
    m.RECONCILED_IMAGES.inc(outcome.images_stored)
    log.info("reconciled", extra={"images": outcome.images_stored, "check": job.checks})
    return outcome.images_stored


def fail_over_jobs(app: Celery, runtime: Runtime) -> int:
    """Re-run through the campaign's failover provider the Runware jobs that failed on
    Runware's side, once getResponse says Runware has nothing of them (`remixq.failover`);
    returns how many failed over. Their new jobs go to the native queue at once."""
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        candidates = failover.take_candidates(session, limit=settings.reconcile_batch)
    new_ids = []
    for candidate in candidates:
        with logs.bound(job_id=candidate.job_id, task_uuid=candidate.task_uuid):
            try:
                with waited_permit(runtime, timeout=30), provider_call(runtime, "get_response"):
                    poll = runtime.client.get_response(candidate.task_uuid)
            except (RunwareError, LimitTimeout) as exc:
                log.info("getResponse failed; failover decided later", extra={"error": str(exc)})
                continue
            with transaction(runtime.sessions) as session:
                done = failover.apply(
                    session, candidate, poll, prices=PriceTable.configured(settings)
                )
                if done is not None and poll.results:
                    reconcile.apply_poll(session, poll, limits=Limits.of(settings))
            if done is None:
                continue
            m.FAILOVERS.labels(done.state).inc()
            log.log(
                logging.INFO if done.new_job_id else logging.WARNING,
                "failover",
                extra={"state": done.state, "reason": done.reason, "new_job_id": done.new_job_id},
            )
            if done.new_job_id is not None:
                new_ids.append(done.new_job_id)
    if new_ids:
        enqueue(app, runtime.sessions, new_ids, batch=settings.submit_batch)
    return len(new_ids)


def prune_inbox(runtime: Runtime) -> int:
    """Delete the inbox rows no replay needs, older than REMIXQ_INBOX_RETENTION; returns how
    many (`remixq.inbox`: orphans stay, batches are bounded)."""
    retention = timedelta(seconds=runtime.settings.inbox_retention)
    pruned = inbox.prune(runtime.sessions, older_than=retention)
    if pruned.deleted:
        log.info("inbox pruned", extra={"rows": pruned.deleted, "before": pruned.before})
    return pruned.deleted


def probe_account(app: Celery, runtime: Runtime) -> int:
    """While some campaign is paused because the provider refused the account, ask whether it
    is usable again; if so, resume every paused campaign and hand its jobs to the broker.
    Returns the jobs handed over.

    The question is a `getResponse` for a taskUUID nobody used (runware-platform.md §3): an
    authenticated call that creates nothing and costs nothing. An answer that does not refuse
    the account (any answer but 401/402/403, including "unknown task") means it is usable; a
    transient failure says nothing, and the next round asks again. It takes no permit: the
    shared pause it would wait behind is the one it is here to lift, and it runs once a round.
    """
    with transaction(runtime.sessions) as session:
        if not jobs.any_paused(session):
            return 0
    try:
        runtime.client.get_response(str(uuid.uuid4()))
    except (Unauthorized, PaymentRequired, Forbidden) as exc:
        log.warning(
            "the provider still refuses the account; campaigns stay paused",
            extra={"error": str(exc)},
        )
        return 0
    except TransientError as exc:
        log.info("account probe got no answer; will ask again", extra={"error": str(exc)})
        return 0
    except RunwareError:
        pass  # refused as a request (e.g. the unknown task), not as an account: usable
    with transaction(runtime.sessions) as session:
        campaigns, job_ids = jobs.resume_campaigns(session)
    runtime.limit.resume()
    if job_ids:
        enqueue(app, runtime.sessions, job_ids, batch=runtime.settings.submit_batch)
    log.warning(
        "the provider accepts the account again; campaigns resumed",
        extra={"campaigns": ",".join(map(str, campaigns)) or "-", "jobs": len(job_ids)},
    )
    return len(job_ids)
