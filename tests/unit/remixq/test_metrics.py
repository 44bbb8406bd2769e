"""The metrics read from the database (jobs by status, spend), and the webhook outcomes."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from remixq import metrics, migrate
from remixq.db import make_engine
from remixq.models import Image
from tests.support.factories import make_job


def _engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'metrics.sqlite'}"
    migrate.upgrade(url)
    return make_engine(url)


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_jobs_by_status_and_spend_come_from_the_database_once_per_period(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    now = [0.0]
    collector = metrics.DatabaseCollector(lambda: engine, cache_seconds=15, clock=lambda: now[0])
    registry = CollectorRegistry()
    registry.register(collector)
    with Session(engine) as session:
        done = make_job(session, status="completed", number_results=2)
        for cost in ("0.06", "0.03"):
            session.add(Image(job_id=done.id, image_uuid=str(uuid.uuid4()), cost=Decimal(cost),
                              raw={}))  # fmt: skip
        for _ in range(10):  # a batch of ten queued jobs counts ten
            make_job(session, status="queued")
        session.commit()

    assert _sample(registry, "remixq_jobs", status="queued") == 10
    assert _sample(registry, "remixq_jobs", status="completed") == 1
    assert _sample(registry, "remixq_jobs", status="failed") == 0  # every status is there
    assert _sample(registry, "remixq_spend_usd") == 0.09
    assert _sample(registry, "remixq_database_up") == 1

    with Session(engine) as session:
        make_job(session, status="queued")
        session.commit()
    now[0] = 14.0
    assert _sample(registry, "remixq_jobs", status="queued") == 10  # cached
    now[0] = 15.0
    assert _sample(registry, "remixq_jobs", status="queued") == 11
    engine.dispose()


def test_a_database_that_cannot_answer_leaves_the_gauges_out(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'nowhere.sqlite'}")
    registry = CollectorRegistry()
    registry.register(metrics.DatabaseCollector(lambda: engine))
    assert _sample(registry, "remixq_database_up") == 0
    assert _sample(registry, "remixq_jobs", status="queued") is None


def test_a_webhook_counts_by_the_outcome_its_inbox_status_says() -> None:
    def count(outcome: str) -> float:
        return metrics.WEBHOOKS.labels(outcome)._value.get()

    before = {outcome: count(outcome) for outcome in metrics.WEBHOOK_OUTCOMES}
    metrics.observe_webhook("processed", images_stored=1, duplicates=0)
    metrics.observe_webhook("processed", images_stored=0, duplicates=1)
    metrics.observe_webhook("processed", images_stored=0, duplicates=0)  # an error stored
    metrics.observe_webhook("orphan", 0, 0)
    metrics.observe_webhook("invalid", 0, 0)
    metrics.observe_webhook("rejected", 0, 0)
    after = {outcome: count(outcome) - before[outcome] for outcome in metrics.WEBHOOK_OUTCOMES}
    assert after == {"stored": 2, "duplicate": 1, "orphan": 1, "invalid": 1, "refused": 1,
                     "unauthorized": 0, "unavailable": 0}  # fmt: skip
