"""Counters the tests read through ``GET /_control/stats``.

Per taskUUID: ``attempts`` (POSTs naming it as an imageInference task, conflicts and injected
faults included), ``accepted`` (0 or 1 by construction: a reused taskUUID gets
conflictTaskUUID) and ``webhooks_delivered`` (2xx webhook answers). Global: submissions,
accepted tasks, conflicts, validation errors, injected faults by kind, results, cost (a decimal
string), webhook and upload deliveries, getResponse calls, images served, and
``requests_per_second``: the ``POST /v1`` requests that arrived in each second of the wall
clock (its Unix time as the key), which shows whether the callers kept to a rate limit.
``providers``: per provider, ``calls`` (HTTP calls of its generating endpoint) and ``charged``
(the calls that cost money: Runware's accepted tasks, Ideogram's calls that generated images,
lost answers included), with Ideogram's ``images`` (``unsafe`` among them) and ``cost``; and
``ideogram_prompts``, calls and charged calls per prompt, which is how a test proves that no
request was paid twice (Ideogram has no task id). Per task, per second and per prompt, the
detail is left out with ``?tasks=0``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

FAULT_KINDS = (
    "http_429",
    "http_500",
    "http_503",
    "http_504",
    "submit_timeout",
    "submit_timeout_after_accept",
    "generation_failure",
    "webhook_before_ack",
    "webhook_reorder",
    "nsfw_flagged",
    "insufficient_credits",
    "image_500",
    "image_truncated",
    "image_garbage",
    "ideogram_429",
    "ideogram_5xx",
    "ideogram_422",
    "ideogram_lost_answer",
    "ideogram_unsafe",
)
WEBHOOK_EVENTS = ("attempted", "succeeded", "failed", "retried", "gave_up", "dropped", "duplicated")
UPLOAD_EVENTS = ("attempted", "succeeded", "failed")
GLOBAL_COUNTERS = (
    "submissions",
    "auth_failures",
    "tasks_accepted",
    "conflicts",
    "validation_errors",
    "tasks_failed",
    "results_generated",
    "get_response_calls",
    "images_served",
    "images_not_found",  # unknown, expired (ttl) or asked in another format
)


@dataclass
class _TaskCounters:
    attempts: int = 0
    accepted: int = 0
    webhooks_delivered: int = 0


@dataclass
class _State:
    counters: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    webhooks: Counter[str] = field(default_factory=Counter)
    uploads: Counter[str] = field(default_factory=Counter)
    cost_total: Decimal = Decimal(0)
    tasks: dict[str, _TaskCounters] = field(default_factory=dict)
    per_second: Counter[int] = field(default_factory=Counter)
    ideogram: Counter[str] = field(default_factory=Counter)  # calls, charged, images, unsafe
    ideogram_cost: Decimal = Decimal(0)
    ideogram_prompts: dict[str, Counter[str]] = field(default_factory=dict)


class Stats:
    """Thread-safe counters; every method takes the lock briefly."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._state = _State()
        self._clock = clock

    def reset(self) -> None:
        with self._lock:
            self._state = _State()

    def count(self, name: str, amount: int = 1) -> None:
        if name not in GLOBAL_COUNTERS:
            raise KeyError(name)
        with self._lock:
            self._state.counters[name] += amount

    def fault(self, kind: str) -> None:
        if kind not in FAULT_KINDS:
            raise KeyError(kind)
        with self._lock:
            self._state.faults[kind] += 1

    def webhook(self, event: str, task_uuid: str | None = None) -> None:
        if event not in WEBHOOK_EVENTS:
            raise KeyError(event)
        with self._lock:
            self._state.webhooks[event] += 1
            if event == "succeeded" and task_uuid is not None:
                self._task(task_uuid).webhooks_delivered += 1

    def upload(self, event: str) -> None:
        if event not in UPLOAD_EVENTS:
            raise KeyError(event)
        with self._lock:
            self._state.uploads[event] += 1

    def submission(self, task_uuids: Iterable[str]) -> None:
        """One POST /v1; every imageInference taskUUID it names gets an attempt."""
        second = int(self._clock())
        with self._lock:
            self._state.counters["submissions"] += 1
            self._state.per_second[second] += 1
            for task_uuid in task_uuids:
                self._task(task_uuid).attempts += 1

    def accepted(self, task_uuid: str) -> None:
        with self._lock:
            self._state.counters["tasks_accepted"] += 1
            self._task(task_uuid).accepted += 1

    def result(self, cost: Decimal | None) -> None:
        with self._lock:
            self._state.counters["results_generated"] += 1
            if cost is not None:
                self._state.cost_total += cost

    def ideogram_call(self, prompt: str | None) -> None:
        """One POST /v1/ideogram-v3/remix (``prompt``: its form's, if any)."""
        with self._lock:
            self._state.ideogram["calls"] += 1
            if prompt is not None:
                self._state.ideogram_prompts.setdefault(prompt, Counter())["calls"] += 1

    def ideogram_charged(self, prompt: str, *, images: int, unsafe: int, cost: Decimal) -> None:
        """An Ideogram call that generated (and was charged for) ``images`` images."""
        with self._lock:
            state = self._state
            state.ideogram["charged"] += 1
            state.ideogram["images"] += images
            state.ideogram["unsafe"] += unsafe
            state.ideogram_cost += cost
            state.ideogram_prompts.setdefault(prompt, Counter())["charged"] += 1

    def accepted_total(self) -> int:
        with self._lock:
            return self._state.counters["tasks_accepted"]

    def snapshot(self, *, include_tasks: bool = True) -> dict[str, Any]:
        with self._lock:
            state = self._state
            body: dict[str, Any] = {name: state.counters[name] for name in GLOBAL_COUNTERS}
            body["cost_total"] = str(state.cost_total.quantize(Decimal("0.0001")))
            body["faults"] = {kind: state.faults[kind] for kind in FAULT_KINDS}
            body["webhooks"] = {event: state.webhooks[event] for event in WEBHOOK_EVENTS}
            body["uploads"] = {event: state.uploads[event] for event in UPLOAD_EVENTS}
            body["providers"] = {
                "runware": {
                    "calls": state.counters["submissions"],
                    "charged": state.counters["tasks_accepted"],
                },
                "ideogram": {
                    **{
                        key: state.ideogram[key] for key in ("calls", "charged", "images", "unsafe")
                    },
                    "cost": str(state.ideogram_cost.quantize(Decimal("0.0001"))),
                },
            }
            if include_tasks:  # the detail, which grows with the run
                body["requests_per_second"] = {
                    str(second): n for second, n in sorted(state.per_second.items())
                }
                body["ideogram_prompts"] = {
                    prompt: {"calls": c["calls"], "charged": c["charged"]}
                    for prompt, c in state.ideogram_prompts.items()
                }
                body["tasks"] = {
                    task_uuid: {
                        "attempts": c.attempts,
                        "accepted": c.accepted,
                        "webhooks_delivered": c.webhooks_delivered,
                    }
                    for task_uuid, c in state.tasks.items()
                }
            return body

    def _task(self, task_uuid: str) -> _TaskCounters:
        counters = self._state.tasks.get(task_uuid)
        if counters is None:
            counters = self._state.tasks[task_uuid] = _TaskCounters()
        return counters
