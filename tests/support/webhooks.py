"""Webhooks as the tests send them: the receiver app on a test database, the URLs a job is given,
result items, and what the database holds afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from remixq.config import load_settings
from remixq.db import utcnow
from remixq.models import Job, WebhookEvent
from remixq.security import webhook_token, webhook_url
from webhook_receiver.app import create_app

SECRET = "receiver-test-secret"


@contextmanager
def receiver_client(
    engine: Engine, data_dir: Path, *, secret: str = SECRET, **settings: Any
) -> Iterator[FlaskClient]:
    """A test client of the receiver app storing into `engine`'s database."""
    app = create_app(
        load_settings(
            database_url=engine.url.render_as_string(hide_password=False),
            webhook_secret=secret,
            data_dir=data_dir,
            **settings,
        )
    )
    with app.test_client() as client:
        yield client


def issued_url(task_uuid: str, token: str | None = None) -> str:
    """The path of the webhook URL a job is given (remixq.security.webhook_url)."""
    if token is None:
        return webhook_url("", SECRET.encode(), task_uuid)
    return f"/webhooks/runware/{task_uuid}/{token}"


def url(task_uuid: str, token: str | None = None) -> str:
    """The query form of the URL, which URLs issued by earlier versions have."""
    token = webhook_token(SECRET.encode(), task_uuid) if token is None else token
    return f"/webhooks/runware?task={task_uuid}&token={token}"


def result(task_uuid: str, image_uuid: str | None = None) -> dict[str, object]:
    """One successful result item, as Runware posts it."""
    return {
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "imageUUID": image_uuid or str(uuid.uuid4()),
        "imageURL": "http://x/y.jpg",
        "seed": 7,
        "cost": 0.06,
    }


def count(engine: Engine, model: type, **where: object) -> int:
    """Rows of `model` whose columns equal `where`."""
    with Session(engine) as session:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return session.scalar(query) or 0


@contextmanager
def writer_held(engine: Engine, task_uuid: str) -> Iterator[None]:
    """Make the writer wait inside its next batch: the job's row locked on PostgreSQL, the
    whole database write-locked on SQLite (until the block ends)."""
    with engine.connect() as connection, connection.begin():
        # On SQLite remixq.db begins with BEGIN IMMEDIATE: the write lock is taken here.
        connection.execute(select(Job.id).where(Job.task_uuid == task_uuid).with_for_update())
        yield


def aged_inbox_rows(engine: Engine, ages: dict[str, list[float]]) -> dict[str, list[int]]:
    """Committed inbox rows received `age` days ago, for each status and age in `ages`; their
    ids by status (a task of their own each, no job)."""
    ids: dict[str, list[int]] = {}
    with Session(engine) as session, session.begin():
        for status, days in ages.items():
            rows = [
                WebhookEvent(
                    received_at=utcnow() - timedelta(days=age),
                    source="webhook",
                    task_uuid=str(uuid.uuid4()),
                    status=status,
                    body=b"{}",
                )
                for age in days
            ]
            session.add_all(rows)
            session.flush()
            ids[status] = [row.id for row in rows]
    return ids


def surviving(engine: Engine, ids: dict[str, list[int]]) -> dict[str, int]:
    """How many of `ids` (by status) are still in the inbox."""
    with Session(engine) as session:
        return {
            status: session.scalar(
                select(func.count()).select_from(WebhookEvent).where(WebhookEvent.id.in_(some))
            )
            or 0
            for status, some in ids.items()
        }
