"""Producers and workers changing the same jobs at once never deadlock on PostgreSQL: every
statement that changes several jobs locks them in id order (`remixq.jobs._locked_in_id_order`).

Before, an UPDATE over an IN list locked rows in the order its plan visited them: index order
for a worker's 10 ids, heap order for a producer's 1,000 (a bitmap scan), and the two orders
differ once rows have been updated (their new versions live elsewhere in the heap). A bench run
of a whole campaign hit "deadlock detected" between `mark_enqueued` and `record_accepted`; here
a producer marks 2,000 jobs enqueued, again and again, while workers claim and release ten at a
time, on a heap whose order is not the ids' (21 deadlocks in 20 s before the fix)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from remixq import jobs, migrate
from remixq.db import make_engine
from remixq.models import Campaign
from tests.support.databases import recreate_pg_database, scratch_pg_url

pytestmark = pytest.mark.postgres

JOBS = 3000
RUN_SECONDS = 6.0


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    url = scratch_pg_url("lock_order")
    recreate_pg_database(url)
    migrate.upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        campaign = Campaign(name="lock-order")
        session.add(campaign)
        session.flush()
        session.execute(
            text(
                "INSERT INTO jobs (campaign_id, task_uuid, provider, model, request,"
                " number_results, results_received, status, attempts, created_at, updated_at)"
                " SELECT :campaign, gen_random_uuid(), 'runware', 'ideogram:4@2', '{}'::jsonb,"
                " 1, 0, 'queued', 0, now(), now() FROM generate_series(1, :n)"
            ),
            {"campaign": campaign.id, "n": JOBS},
        )
        # New versions of every third row at the heap's end: heap order is no longer id order.
        session.execute(text("UPDATE jobs SET updated_at = now() WHERE id % 3 = 0"))
        session.commit()
    yield engine
    engine.dispose()


def test_producers_and_workers_never_deadlock(engine: Engine) -> None:
    with Session(engine) as session:
        ids = list(session.scalars(text("SELECT id FROM jobs ORDER BY id")))[:2000]
    deadline = time.monotonic() + RUN_SECONDS
    deadlocks: list[str] = []
    rounds = {"producer": 0, "worker": 0}
    guard = threading.Lock()

    def run(name: str, step: Callable[[], None]) -> None:
        while time.monotonic() < deadline:
            try:
                step()
            except DBAPIError as exc:
                if "deadlock" not in str(exc):
                    raise
                with guard:
                    deadlocks.append(name)
            else:
                with guard:
                    rounds[name] += 1

    def produce() -> None:
        with Session(engine) as session:
            jobs.mark_enqueued(session, job_ids=ids)
            session.commit()

    def work() -> None:
        batch = sorted(random.sample(ids, 10))
        with Session(engine) as session:
            claimed = jobs.claim(session, job_ids=batch, lease=timedelta(minutes=5))
            session.commit()
        with Session(engine) as session:
            jobs.release(
                session,
                job_ids=[c.job_id for c in claimed],
                code="timeout",
                message="again",
                retry_at=jobs.utcnow(),
            )
            session.commit()

    threads = [threading.Thread(target=run, args=("producer", produce)) for _ in range(2)]
    threads += [threading.Thread(target=run, args=("worker", work)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RUN_SECONDS + 60)
    assert rounds["producer"] > 0 and rounds["worker"] > 0  # both really ran
    assert deadlocks == []
