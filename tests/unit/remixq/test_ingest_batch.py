"""Batched ingestion (the receiver's group commit) on both backends: a batch stores exactly
what the same webhooks store one by one, and a batch that fails stores nothing."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from remixq.ingest import Outcome, ingest
from remixq.ingest import ingest_batch as ingest_batch_on
from remixq.models import Image, Job, WebhookEvent

# What a delivery is, drawn by hypothesis: (kind, job index, image indexes).
KINDS = ("bare", "data", "error", "orphan", "invalid", "stray", "processing")
delivery = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 2),
    st.lists(st.integers(0, 3), min_size=1, max_size=3),
)


@dataclass
class World:
    """Three jobs and their images, with fresh UUIDs: one world per way of ingesting."""

    engine: Engine
    number_results: list[int]
    tasks: list[str] = field(default_factory=list)
    images: dict[tuple[int, int], str] = field(default_factory=dict)
    orphan: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        self.tasks = [str(uuid.uuid4()) for _ in self.number_results]
        with Session(self.engine) as session, session.begin():
            for task, number in zip(self.tasks, self.number_results, strict=True):
                session.add(
                    Job(
                        task_uuid=task,
                        model="ideogram:4@2",
                        request={},
                        number_results=number,
                        status="submitted",
                    )
                )

    def image(self, job: int, index: int) -> str:
        return self.images.setdefault((job, index), str(uuid.uuid4()))

    def result(self, job: int, index: int, url: str = "http://x/y.jpg") -> dict[str, Any]:
        return {
            "taskType": "imageInference",
            "taskUUID": self.tasks[job],
            "imageUUID": self.image(job, index),
            "imageURL": url,
            "seed": 42,
            "cost": 0.0123,
        }

    def delivery(self, kind: str, job: int, images: list[int]) -> tuple[bytes, str]:
        task = self.tasks[job]
        payload: Any
        if kind == "bare":
            payload = self.result(job, images[0])
        elif kind == "data":
            payload = {"data": [self.result(job, i) for i in images]}
        elif kind == "error":
            payload = {"errors": [{"taskUUID": task, "code": "invalidSeedImage", "message": "m"}]}
        elif kind == "orphan":
            task = self.orphan
            payload = {**self.result(job, images[0]), "taskUUID": task}
        elif kind == "invalid":
            return b"{not json", task
        elif kind == "stray":
            payload = self.result((job + 1) % len(self.tasks), images[0])
        else:
            payload = {"data": [{"taskUUID": task, "status": "processing"}]}
        return json.dumps(payload).encode(), task

    def anonymous(self, value: str | None) -> str | None:
        """`value` with this world's UUIDs replaced by their roles, to compare two worlds."""
        if value is None:
            return None
        for index, task in enumerate(self.tasks):
            value = value.replace(task, f"<task {index}>")
        return value.replace(self.orphan, "<orphan>")

    def outcome(self, outcome: Outcome) -> tuple[Any, ...]:
        statuses = {self.anonymous(task): status for task, status in outcome.job_statuses.items()}
        return (
            outcome.inbox_status,
            outcome.images_stored,
            outcome.duplicates,
            self.anonymous(outcome.message),
            statuses,
        )

    def stored(self) -> dict[str, Any]:
        """Everything the deliveries left in the database, without UUIDs or ids."""
        with Session(self.engine) as session:
            jobs = session.scalars(select(Job).where(Job.task_uuid.in_(self.tasks))).all()
            by_task = {job.task_uuid: job for job in jobs}
            images = Counter(
                session.scalars(
                    select(Job.task_uuid).join(Image).where(Job.task_uuid.in_(self.tasks))
                )
            )
            events = session.execute(
                select(WebhookEvent.task_uuid, WebhookEvent.status, WebhookEvent.error).where(
                    WebhookEvent.task_uuid.in_([*self.tasks, self.orphan])
                )
            ).all()
        return {
            "jobs": [
                (by_task[t].status, by_task[t].results_received, by_task[t].error_code)
                for t in self.tasks
            ],
            "images": [images[t] for t in self.tasks],
            "inbox": Counter(
                (self.anonymous(task), status, self.anonymous(error))
                for task, status, error in events
            ),
        }


def ingest_batch(engine: Engine, deliveries: list[tuple[bytes, str]]) -> list[Outcome]:
    with engine.connect() as connection:
        return ingest_batch_on(connection, deliveries)


def one_by_one(world: World, deliveries: list[tuple[bytes, str]]) -> list[Outcome]:
    outcomes = []
    for body, task in deliveries:
        with Session(world.engine) as session, session.begin():
            outcomes.append(ingest(session, body=body, expected_task_uuid=task))
    return outcomes


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    number_results=st.lists(st.integers(1, 3), min_size=3, max_size=3),
    drawn=st.lists(delivery, min_size=1, max_size=14),
    cuts=st.sets(st.integers(1, 13), max_size=4),
)
def test_a_batch_stores_what_the_same_webhooks_store_one_by_one(
    engine: Engine, number_results: list[int], drawn: list[Any], cuts: set[int]
) -> None:
    alone, batched = World(engine, number_results), World(engine, number_results)
    expected = one_by_one(alone, [alone.delivery(*d) for d in drawn])

    deliveries = [batched.delivery(*d) for d in drawn]
    bounds = [0, *sorted(c for c in cuts if c < len(deliveries)), len(deliveries)]
    outcomes: list[Outcome] = []
    for start, end in pairwise(bounds):
        outcomes += ingest_batch(engine, deliveries[start:end])

    assert [batched.outcome(o) for o in outcomes] == [alone.outcome(o) for o in expected]
    assert batched.stored() == alone.stored()


def test_redeliveries_in_one_batch_are_applied_in_order(engine: Engine) -> None:
    world = World(engine, [2])
    first, second = world.delivery("bare", 0, [0]), world.delivery("bare", 0, [1])
    outcomes = ingest_batch(engine, [first, first, second, second])
    assert [(o.images_stored, o.duplicates, o.job_statuses) for o in outcomes] == [
        (1, 0, {world.tasks[0]: "submitted"}),
        (0, 1, {world.tasks[0]: "submitted"}),
        (1, 0, {world.tasks[0]: "completed"}),
        (0, 1, {world.tasks[0]: "completed"}),
    ]
    assert world.stored()["images"] == [2]
    assert sum(world.stored()["inbox"].values()) == 4


def poisoned(world: World, job: int, url: str) -> tuple[bytes, str]:
    return json.dumps(world.result(job, 0, url)).encode(), world.tasks[job]


@pytest.mark.parametrize("shape", ["one statement", "with a refused body", "two rounds"])
def test_a_failed_batch_stores_nothing(engine: Engine, poison: str, shape: str) -> None:
    world = World(engine, [1, 1])
    batch = [world.delivery("bare", 0, [0]), poisoned(world, 1, poison)]
    if shape == "with a refused body":
        batch.append(world.delivery("invalid", 0, [0]))
    elif shape == "two rounds":
        batch.append(world.delivery("bare", 0, [0]))
    with pytest.raises(DBAPIError, match="poisoned image"):
        ingest_batch(engine, batch)
    with Session(engine) as session:
        events = select(func.count()).where(WebhookEvent.task_uuid.in_(world.tasks))
        assert session.scalar(events) == 0
    assert world.stored()["jobs"] == [("submitted", 0, None), ("submitted", 0, None)]
    # The same webhooks stored alone: only the poisoned one fails.
    assert ingest_batch(engine, batch[:1])[0].job_statuses == {world.tasks[0]: "completed"}
