"""Several webhooks at once, for the receiver's group commit (`webhook_receiver.group_commit`):
each gets the outcome `ingest` would give it alone, in as few statements as the backend
allows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from remixq.db import utcnow
from remixq.ingest.apply import account, apply, conclude, store_for
from remixq.ingest.postgres import PostgresStore
from remixq.ingest.records import (
    DEFAULT_LIMITS,
    Applied,
    Arrival,
    Limits,
    Outcome,
    Parsed,
    Store,
    read,
)
from remixq.states import InboxStatus


def ingest_batch(
    connection: Connection,
    deliveries: Sequence[tuple[bytes, str]],
    *,
    source: str = "webhook",
    limits: Limits = DEFAULT_LIMITS,
) -> list[Outcome]:
    """Several webhooks at once, each `(body, expected_task_uuid)` with the outcome `ingest`
    would give it alone (within the same `limits`), in as few transactions as the backend
    allows, committed: every webhook
    is stored, durably, when this returns, or nothing of the batch is (the receiver's group
    commit, `webhook_receiver.group_commit`). `connection` must be outside any transaction.

    On PostgreSQL a batch whose every body is about its own task, one task once (nearly every
    batch), is one statement, run in autocommit: one round trip and one commit for the batch.
    Anything else is one transaction."""
    plan = Plan(deliveries, source, limits)
    store = store_for(connection, limits)
    if isinstance(store, PostgresStore) and plan.one_statement:
        with store.autocommit():
            return plan.run(store)
    with connection.begin():
        return plan.run(store)


class Plan:
    """A batch of deliveries, read: the bodies about exactly their own task go into rounds that
    hold each task at most once (in arrival order), one statement per round on PostgreSQL; any
    other body (invalid, refused, only still-processing items) takes `ingest`'s path."""

    def __init__(self, deliveries: Sequence[tuple[bytes, str]], source: str, limits: Limits):
        now = utcnow()
        self.size = len(deliveries)
        self.others: list[tuple[int, Arrival, Parsed | Outcome]] = []
        self.rounds: list[list[Applied]] = []
        pending: list[Applied] = []
        for index, (body, expected) in enumerate(deliveries):
            arrival = Arrival(body, source, expected, now)
            parsed = read(body, expected, limits)
            if isinstance(parsed, Outcome) or len(parsed.tasks) != 1 or expected is None:
                self.others.append((index, arrival, parsed))
                continue
            task = parsed.tasks[0]
            results, error = parsed.results.get(task, []), parsed.errors.get(task)
            pending.append(Applied(index, arrival, task, results, error))
        while pending:
            batch: list[Applied] = []
            later: list[Applied] = []
            seen: set[str] = set()
            for applied in pending:
                (later if applied.task_uuid in seen else batch).append(applied)
                seen.add(applied.task_uuid)
            self.rounds.append(batch)
            pending = later

    @property
    def one_statement(self) -> bool:
        return not self.others and len(self.rounds) == 1

    def run(self, store: Store) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * self.size
        for index, arrival, parsed in self.others:
            outcomes[index] = apply(store, arrival, parsed, None)
        for batch in self.rounds:
            applied_rows = zip(batch, store.insert_events_and_apply(batch), strict=True)
            for applied, (inbox, job) in applied_rows:
                outcome = Outcome(InboxStatus.PROCESSED)
                orphan = not account(
                    outcome, applied.task_uuid, applied.results, applied.error, job
                )
                conclude(store, inbox, outcome, orphans=[applied.task_uuid] * orphan, tasks=1)
                outcomes[applied.index] = outcome
        return [outcome for outcome in outcomes if outcome is not None]
