"""The values ingestion passes between its steps: the limits it applies, a body read into its
items by task, an arrival and its inbox row, the outcome a caller gets, and the storage steps
(`Store`) that each backend implements (`postgres`, `core`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from remixq.config import DEFAULT_INBOX_MAX_PER_TASK, DEFAULT_MAX_IMAGE_COST, Settings
from remixq.ingest.decision import Locked
from remixq.models import WebhookEvent
from remixq.providers.runware.results import (
    ErrorItem,
    InvalidPayload,
    Items,
    RefusedPayload,
    ResultItem,
    read_webhook,
)
from remixq.states import InboxStatus


@dataclass(frozen=True)
class Limits:
    """What a body may do to the ledger and the inbox (docs/security.md): no image costs more
    than `max_image_cost` USD, and the inbox keeps at most `inbox_max_per_task` bodies per task
    (a later one is still applied, and counted on its job: `jobs.inbox_overflow`)."""

    max_image_cost: Decimal = DEFAULT_MAX_IMAGE_COST
    inbox_max_per_task: int = DEFAULT_INBOX_MAX_PER_TASK

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.max_image_cost, settings.inbox_max_per_task)


DEFAULT_LIMITS = Limits()  # the settings' defaults: for callers without settings (tests)


@dataclass
class Outcome:
    """What one body did: the inbox status and, per task, what changed; `kept`: whether its
    inbox row was written (not when its task's inbox is full: `Limits`)."""

    inbox_status: InboxStatus
    images_stored: int = 0
    duplicates: int = 0
    message: str = ""
    job_statuses: dict[str, str] = field(default_factory=dict)
    kept: bool = True


@dataclass(frozen=True)
class Parsed:
    results: dict[str, list[ResultItem]]  # by taskUUID
    errors: dict[str, ErrorItem]  # by taskUUID
    tasks: list[str]  # every task the body names, sorted (the order rows are locked in)


def read(body: bytes, expected_task_uuid: str | None, limits: Limits) -> Parsed | Outcome:
    """A webhook body's items by task, or the final outcome of a body that cannot be applied
    (invalid, or refused: a cost out of `limits`)."""
    try:
        items = read_webhook(body, max_cost=limits.max_image_cost)
    except RefusedPayload as exc:
        return Outcome(InboxStatus.REJECTED, message=str(exc))
    except InvalidPayload as exc:
        return Outcome(InboxStatus.INVALID, message=str(exc))
    return by_task(items, expected_task_uuid)


def by_task(items: Items, expected_task_uuid: str | None) -> Parsed | Outcome:
    """`items` by task; refused when one is about another task than `expected_task_uuid`."""
    results: dict[str, list[ResultItem]] = defaultdict(list)
    for result in items.results:
        results[str(result.task_uuid)].append(result)
    errors = {str(e.task_uuid): e for e in items.errors}
    tasks = set(results) | set(errors)
    if expected_task_uuid is not None and tasks - {str(UUID(expected_task_uuid))}:
        stray = min(tasks - {str(UUID(expected_task_uuid))})
        return Outcome(
            InboxStatus.REJECTED,
            message=f"taskUUID {stray} is not the task this webhook URL was issued for",
        )
    return Parsed(dict(results), errors, sorted(tasks))


@dataclass(frozen=True)
class InboxRow:
    """An inbox row a store inserted, as it wrote it; `id` None: not written, its task's inbox
    being full (the delivery counted on its job instead)."""

    id: int | None
    status: str | None
    error: str | None


Inbox = InboxRow | WebhookEvent  # a replayed body's row is the caller's WebhookEvent


@dataclass(frozen=True)
class Arrival:
    """A body as it came in: what its inbox row records."""

    body: bytes
    source: str
    task_uuid: str | None
    at: datetime


@dataclass(frozen=True)
class Applied:
    """A body's items about one task, to be stored with its inbox row (`index`: its place in
    the caller's list)."""

    index: int
    arrival: Arrival
    task_uuid: str
    results: list[ResultItem]
    error: ErrorItem | None


class Store(Protocol):
    def insert_event(self, arrival: Arrival, *, status: InboxStatus, error: str | None) -> InboxRow:
        """The arrival's inbox row, unless its task's inbox holds `Limits.inbox_max_per_task`
        rows and a job has the task: then the job's `inbox_overflow` counts it instead."""

    def apply(
        self, task_uuid: str, results: list[ResultItem], error: ErrorItem | None, now: datetime
    ) -> Locked | None:
        """Lock the job, insert its new images unless they break the cap (`decision`), move it
        as the state machine says; None when no job has this taskUUID."""

    def insert_events_and_apply(self, batch: list[Applied]) -> list[tuple[InboxRow, Locked | None]]:
        """For each of `batch` (no two about the same task): `insert_event` with status
        "processed", then `apply`."""

    def correct_event(self, inbox: InboxRow, outcome: Outcome) -> None: ...
