"""Budgets under concurrent producers: 8 producers, each on its own connection, add jobs to one
campaign at once; a watcher reads the campaign's reservation all along. Reserved never passes
the budget, the accepted estimates add up exactly, and so do the settled costs.

Whether a race shows is up to the scheduler, so the lock itself is tested apart, step by step
on PostgreSQL: a second producer waits for the first's transaction, then sees its reservation
and is refused. Without the lock (remixq.budgets.lock reading without FOR NO KEY UPDATE) it
waits for nothing and stores past the budget: that test fails every time, and the race above
reserved past the budget too when it was tried."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from remixq import budgets, jobs, producing
from remixq.budgets import BudgetExceeded
from remixq.cli.processes import wait_until
from remixq.db import make_engine, make_sessionmaker, transaction
from remixq.examples import campaign_lines
from remixq.ingest import ingest
from remixq.models import Campaign, Image, Job
from remixq.providers.runware import parse_request

PRODUCERS = 8
ATTEMPTS = 10  # submissions per producer: together they ask for about three times the budget
BUDGET = Decimal("3.00")
PRICE = Decimal("0.06")  # every job below: one image at the default speed


def new_jobs(count: int) -> list[producing.NewJob]:
    rows = []
    for _ in range(count):
        row = dict(campaign_lines(1)[0]) | {"numberResults": 1}
        row.get("providerSettings", {}).get("ideogram", {}).pop("renderingSpeed", None)
        row.get("settings", {}).pop("renderingSpeed", None)
        rows.append(producing.NewJob(parse_request(row)))
    return rows


@pytest.fixture(params=["postgresql", "sqlite"])
def shared(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    engine = make_engine(url, pool_size=PRODUCERS + 2)
    yield engine
    engine.dispose()


def test_concurrent_producers_never_reserve_past_the_budget(shared: Engine) -> None:
    sessions = make_sessionmaker(shared)
    name = f"race-{uuid.uuid4()}"
    with transaction(sessions) as session:
        made = producing.get_or_create_campaign(session, name=name, source="race")
        made.budget_usd = BUDGET
        campaign_id = made.id
    start = threading.Barrier(PRODUCERS + 1)
    done = threading.Event()
    seen: list[Decimal] = []

    def produce(index: int) -> tuple[int, int]:
        accepted = refused = 0
        start.wait(timeout=30)
        for attempt in range(ATTEMPTS):
            size = 1 + (index + attempt) % 3
            try:
                with transaction(sessions) as session:
                    of = session.get_one(Campaign, campaign_id)
                    producing.create_jobs(session, campaign=of, new_jobs=new_jobs(size))
                accepted += size
            except BudgetExceeded:
                refused += 1
        return accepted, refused

    def watch() -> None:
        start.wait(timeout=30)
        while not done.is_set():
            with sessions() as session:
                figures = budgets.campaign_spend(session, [campaign_id]).get(campaign_id)
            if figures is not None:
                seen.append(figures.reserved)

    with ThreadPoolExecutor(PRODUCERS + 1) as pool:
        watcher = pool.submit(watch)
        results = list(pool.map(produce, range(PRODUCERS)))
        done.set()
        watcher.result(timeout=60)

    accepted = sum(a for a, _ in results)
    assert sum(r for _, r in results) > 0, "the producers asked for less than the budget"
    assert seen and max(seen) <= BUDGET
    with sessions() as session:
        figures = budgets.campaign_spend(session, [campaign_id])[campaign_id]
        stored = session.scalars(
            select(Job.estimated_cost).where(Job.campaign_id == campaign_id)
        ).all()
    assert figures.jobs == len(stored) == accepted
    assert figures.reserved == figures.estimated == sum(stored) == accepted * PRICE
    assert figures.reserved <= BUDGET
    assert BUDGET - figures.reserved < 3 * PRICE  # refusals came only once it was nearly full

    # Settle every job concurrently, each at its own exact cost: the sum is exact.
    job_ids = sorted(_job_ids(sessions, campaign_id))
    costs = {
        job_id: Decimal("0.0412345678") + Decimal(n) / Decimal(10**10)
        for n, job_id in enumerate(job_ids)
    }

    def settle(chunk: list[int]) -> None:
        for job_id in chunk:
            with transaction(sessions) as session:
                jobs.record_accepted(session, job_ids=[job_id])
                task = str(session.get_one(Job, job_id).task_uuid)
                item = {
                    "taskType": "imageInference",
                    "taskUUID": task,
                    "imageUUID": str(uuid.uuid4()),
                    "imageURL": "http://127.0.0.1/i.jpg",
                    "cost": str(costs[job_id]),
                }
                body = json.dumps({"data": [item]}).replace(
                    f'"{costs[job_id]}"', str(costs[job_id])
                )
                ingest(session, body=body.encode(), expected_task_uuid=task)

    with ThreadPoolExecutor(PRODUCERS) as pool:
        list(pool.map(settle, [job_ids[i::PRODUCERS] for i in range(PRODUCERS)]))
    with sessions() as session:
        settled = budgets.campaign_spend(session, [campaign_id])[campaign_id]
        images = session.scalar(
            select(func.sum(Image.cost))
            .join(Job, Image.job_id == Job.id)
            .where(Job.campaign_id == campaign_id)
        )
    assert settled.spent == images == sum(costs.values())
    assert settled.reserved == 0
    assert settled.overrun == 0


def _job_ids(sessions: sessionmaker[Session], campaign_id: int) -> list[int]:
    with sessions() as session:
        return list(session.scalars(select(Job.id).where(Job.campaign_id == campaign_id)))


def test_a_second_producer_waits_for_the_first_and_sees_its_reservation(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=3)
    sessions = make_sessionmaker(engine)
    try:
        with transaction(sessions) as session:
            made = producing.get_or_create_campaign(
                session, name=f"lock-{uuid.uuid4()}", source="lock", budget_usd=Decimal("0.10")
            )
            campaign_id = made.id
        first = sessions()
        first.begin()
        producing.create_jobs(
            first, campaign=first.get_one(Campaign, campaign_id), new_jobs=new_jobs(1)
        )  # 0.06 reserved, not committed yet: the campaign's row stays locked
        holder = first.scalar(text("SELECT pg_backend_pid()"))
        outcome: list[object] = []

        def second() -> None:
            try:
                with transaction(sessions) as session:
                    of = session.get_one(Campaign, campaign_id)
                    outcome.append(
                        producing.create_jobs(session, campaign=of, new_jobs=new_jobs(1))
                    )
            except BudgetExceeded as exc:
                outcome.append(exc)

        def waiting_for_the_first() -> bool:
            with engine.connect() as connection:
                blocked = connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE :holder = ANY(pg_blocking_pids(pid))"
                    ),
                    {"holder": holder},
                )
            return bool(blocked) or bool(outcome)

        thread = threading.Thread(target=second)
        thread.start()
        try:
            wait_until(waiting_for_the_first, timeout=30, what="the second producer to wait")
            assert not outcome, f"the second producer did not wait for the lock: {outcome}"
        finally:
            first.commit()
            first.close()
            thread.join(30)
        [refused] = outcome
        assert isinstance(refused, BudgetExceeded), refused
        assert refused.detail()["reserved_usd"] == "0.06"  # it saw the first's reservation
        with sessions() as session:
            figures = budgets.campaign_spend(session, [campaign_id])[campaign_id]
        assert (figures.jobs, figures.reserved) == (1, PRICE)
    finally:
        engine.dispose()
