"""The Celery application, built by a factory from the settings (no import-time app).

Only job ids travel through the broker; the database is the source of truth for a job's state,
so there is no result backend. Late acks make a killed worker's message come back; that is safe
because a submission is guarded by a conditional claim and reuses the job's taskUUID.

The tasks are closures over a `Runtime` (engine, sessions, provider client, limit) handed to the
factory or made by it; nothing is hung on the Celery app.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from contextvars import Token
from typing import Any

from celery import Celery, signals
from celery.apps import worker as celery_worker_app
from kombu import Exchange, Queue
from sqlalchemy.orm import Session, sessionmaker

from remixq import logs
from remixq.config import Settings
from remixq.files import private_sqlite
from worker import assets, health, native, periodic, producer, tasks
from worker.names import ASSETS_QUEUE, NATIVE_QUEUE, NATIVE_TASK, PERIODIC_QUEUE, QUEUE
from worker.runtime import Runtime

# Longer than any retry backoff or submission, so the broker never redelivers a message that a
# live worker still holds (the Celery guide's warning about Redis' visibility timeout).
VISIBILITY_TIMEOUT = 3600

# What a main worker consumes (submissions, beat's ticks, downloads), and every queue.
ALL_QUEUES = (QUEUE, PERIODIC_QUEUE, ASSETS_QUEUE, NATIVE_QUEUE)


def create_celery(settings: Settings, *, runtime: Runtime | None = None) -> Celery:
    """The app with the submission task and the periodic work registered, using `runtime`
    (made from `settings` when not given; pass one to keep a handle on what the tasks use)."""
    runtime = runtime or Runtime(settings)
    if runtime.settings is not settings:
        raise ValueError("the runtime was made from other settings")
    app = Celery("remixq", broker=settings.broker, set_as_current=False)
    transport_options: dict[str, object] = {"visibility_timeout": VISIBILITY_TIMEOUT}
    if settings.broker.startswith(("sqla+", "sqlalchemy+")):
        from worker.broker import use_fast_sqlalchemy_transport

        settings.ensure_data_dir()
        private_sqlite(settings.broker)  # owner-only, like the database (remixq.files)
        use_fast_sqlalchemy_transport()
        transport_options = {}  # all of them would go to create_engine
    elif settings.broker.startswith(("redis://", "rediss://")):
        from worker.broker import use_resilient_redis_transport

        use_resilient_redis_transport()  # a worker survives its Redis going away
    app.conf.update(
        task_default_queue=QUEUE,
        # `remixq worker` serves them on three pools (worker.pools): Runware's submissions on
        # the main one; beat's ticks (worker.periodic) and the image downloads (worker.assets)
        # on the background one; the native calls on the native one.
        task_queues=tuple(Queue(name, Exchange(name), routing_key=name) for name in ALL_QUEUES),
        task_routes={NATIVE_TASK: {"queue": NATIVE_QUEUE}},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=4,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # A consumer bootstep follows its connection for the health check; beat's scheduler
        # remembers its last tick, and wakes at least every BEAT_MAX_LOOP seconds.
        beat_scheduler="worker.health:TickingScheduler",
        beat_max_loop_interval=health.BEAT_MAX_LOOP,
        enable_utc=True,
    )
    app.steps["consumer"].add(health.Connected)
    signals.setup_logging.connect(_setup_logging, weak=False)
    signals.task_prerun.connect(_bind_task, weak=False)
    signals.task_postrun.connect(_unbind_task, weak=False)
    tasks.register(app, runtime)
    native.register(app, runtime)
    periodic.register(app, runtime)
    assets.register(app, runtime)  # after periodic: it adds the sweep to beat's schedule
    return app


def enqueuer(settings: Settings) -> Callable[[sessionmaker[Session], Sequence[int]], None]:
    """The enqueue step of a producer process (`remixq.submission`): publish the committed jobs
    on a Celery app made from the settings, then mark them queued."""
    app = create_celery(settings)

    def enqueue(sessions: sessionmaker[Session], job_ids: Sequence[int]) -> None:
        producer.enqueue(app, sessions, job_ids, batch=settings.submit_batch)

    return enqueue


def _setup_logging(loglevel: str | int | None = None, **_: Any) -> None:
    # Connecting to this signal stops Celery from configuring logging itself.
    logs.configure(loglevel or "INFO")
    celery_worker_app.safe_say = _say


def _say(message: str, f: Any = None) -> None:  # noqa: ARG001 (Celery's signature)
    """Celery's worker prints its shutdown words from its signal handlers (`safe_say`, a raw
    os.write, no lock): the same, as a line of our format."""
    os.write(2, (logs.line(message.strip(), logger="celery.worker") + "\n").encode())


# Every line a task writes carries its Celery task id (and what the task binds itself: its
# campaign, job and taskUUID). The threads pool runs each task in a context of its own thread.
_bound: dict[str, Token[Mapping[str, object]]] = {}


def _bind_task(task_id: str | None = None, **_: Any) -> None:
    if task_id is not None:
        _bound[task_id] = logs.bind(celery_task_id=task_id)


def _unbind_task(task_id: str | None = None, **_: Any) -> None:
    token = _bound.pop(task_id, None) if task_id is not None else None
    if token is not None:
        with suppress(ValueError):  # a token made in another context (a pool's thread swap)
            logs.unbind(token)
