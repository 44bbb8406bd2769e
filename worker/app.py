"""The Celery application, built by a factory from the settings (no import-time app).

Only job ids travel through the broker; the database is the source of truth for a job's state,
so there is no result backend. Late acks make a killed worker's message come back; that is safe
because a submission is guarded by a conditional claim and reuses the job's taskUUID.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from remixq.config import Settings

SUBMIT_TASK = "remixq.submit_jobs"  # args: [list of job ids], submitted in one request
QUEUE = "remixq"

# Longer than any retry backoff or submission, so the broker never redelivers a message that a
# live worker still holds (the Celery guide's warning about Redis' visibility timeout).
VISIBILITY_TIMEOUT = 3600


def create_celery(settings: Settings) -> Celery:
    app = Celery("remixq", broker=settings.broker, set_as_current=False)
    transport_options: dict[str, object] = {"visibility_timeout": VISIBILITY_TIMEOUT}
    if settings.broker.startswith(("sqla+", "sqlalchemy+")):
        from worker.broker import use_fast_sqlalchemy_transport

        settings.ensure_data_dir()
        use_fast_sqlalchemy_transport()
        transport_options = {}  # all of them would go to create_engine
    app.conf.update(
        task_default_queue=QUEUE,
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
        enable_utc=True,
    )
    signals.setup_logging.connect(_setup_logging, weak=False)
    app.remixq_settings = settings
    from worker import tasks

    tasks.register(app)
    return app


def _setup_logging(loglevel: str | int | None = None, **_: Any) -> None:
    # Connecting to this signal stops Celery from configuring logging itself.
    from remixq.logs import configure

    configure(loglevel or "INFO")
