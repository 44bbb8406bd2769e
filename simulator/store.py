"""In-memory records of accepted tasks, their results and the images they point at.

One lock guards everything; every check-and-change (accept a taskUUID once, finish a result
once) happens under it, which is what makes ``accepted`` 0 or 1 by construction. ``clear`` bumps
an epoch so that background jobs of the previous run notice they are stale and do nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulator.errors import ApiError
from simulator.images import ImageSpec


@dataclass
class ResultRecord:
    """One generation of a task; ``done`` flips once, when its processing time has passed."""

    index: int
    image_uuid: str
    seed: int
    image: ImageSpec
    due: float  # scheduler clock time at which it finishes
    cost: Decimal | None = None
    nsfw: bool | None = None
    structured_prompt: dict[str, Any] | None = None
    done: bool = False


@dataclass
class TaskRecord:
    """An accepted imageInference task and everything needed to answer about it later."""

    task_uuid: str
    task: Mapping[str, Any]
    delivery: str  # sync | async
    output_type: str  # URL | base64Data | dataURI
    base_url: str
    webhook_url: str | None
    upload_endpoint: str | None
    ttl_s: int | None
    results: list[ResultRecord]
    failure: ApiError | None  # decided when accepted, revealed at ``finish_at``
    finish_at: float
    epoch: int = 0
    failed: bool = False


@dataclass(frozen=True)
class Progress:
    """A consistent view of one task for getResponse."""

    record: TaskRecord
    done: tuple[ResultRecord, ...]
    pending: int
    failed: bool


@dataclass
class _StoredImage:
    spec: ImageSpec
    expires_at: float | None


@dataclass
class _Tables:
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    images: dict[str, _StoredImage] = field(default_factory=dict)


class TaskStore:
    """Tasks by taskUUID and images by imageUUID, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables = _Tables()
        self._epoch = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    def is_current(self, epoch: int) -> bool:
        return epoch == self._epoch

    def add(self, record: TaskRecord) -> bool:
        """Insert ``record`` unless its taskUUID was ever accepted; False means conflict."""
        with self._lock:
            if record.task_uuid in self._tables.tasks:
                return False
            record.epoch = self._epoch
            self._tables.tasks[record.task_uuid] = record
            return True

    def finish(self, record: TaskRecord, result: ResultRecord, now: float) -> bool:
        """Mark ``result`` done and publish its image; False when already done or stale."""
        with self._lock:
            if record.epoch != self._epoch or result.done:
                return False
            result.done = True
            expires = now + record.ttl_s if record.ttl_s is not None else None
            self._tables.images[result.image_uuid] = _StoredImage(result.image, expires)
            return True

    def fail(self, record: TaskRecord) -> bool:
        """Mark the task failed; False when already failed or stale."""
        with self._lock:
            if record.epoch != self._epoch or record.failed:
                return False
            record.failed = True
            return True

    def publish(self, image_uuid: str, spec: ImageSpec, expires_at: float | None) -> None:
        """Serve an image made outside a task (Ideogram's synchronous remix) until
        ``expires_at`` (scheduler clock; None: until reset)."""
        with self._lock:
            self._tables.images[image_uuid] = _StoredImage(spec, expires_at)

    def progress(self, task_uuid: str) -> Progress | None:
        with self._lock:
            record = self._tables.tasks.get(task_uuid)
            if record is None:
                return None
            done = tuple(r for r in record.results if r.done)
            return Progress(record, done, len(record.results) - len(done), record.failed)

    def image(self, image_uuid: str, now: float) -> ImageSpec | None:
        """The image's parameters, unless unknown or past its ``ttl``."""
        with self._lock:
            stored = self._tables.images.get(image_uuid)
        if stored is None or (stored.expires_at is not None and now >= stored.expires_at):
            return None
        return stored.spec

    def clear(self) -> None:
        with self._lock:
            self._tables = _Tables()
            self._epoch += 1
