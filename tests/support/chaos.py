"""What every chaos scenario shares: a stack on PostgreSQL and a private Redis, or on the
embedded default (SQLite and the server-less SQLite broker), campaigns built from the bundled
examples, the exactness checks, and the figures.

A scenario runs with short timings (`FAST_SETTINGS`), or, when it measures how long recovery
takes, with the default relay, reconciler and claim settings (`timing="defaults"`), so that its
figure is what a user gets.

A scenario submits a campaign, breaks something while it runs, waits (with a deadline) until
every job is final, then `CampaignRun.verify` asserts the invariants and returns the figures
that `docs/reliability.md` tabulates:

- every job final: completed, or failed only where the scenario makes the provider fail it;
- images stored == the sum of numberResults of the completed jobs, no image stored twice;
- stored cost == the simulator's cost_total, exactly (Decimal);
- the simulator accepted every taskUUID exactly once (however often it was submitted).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from remixq.cli.processes import wait_until
from remixq.models import Job, WebhookEvent
from remixq.states import FINAL
from simulator import assumptions
from tests.support.rabbitmq import private_rabbitmq
from tests.support.stack import Stack, private_redis, running_stack

# `reliability(scenario, title, figures)`: the chaos fixture that adds a row to the report.
Recorder = Callable[[str, str, Mapping[str, Any]], None]

REPORT_ENV = "REMIXQ_RELIABILITY_REPORT"

# Production waits minutes before relaying or polling; the scenarios wait seconds.
FAST_SETTINGS = {
    "REMIXQ_RECONCILE_AFTER": "2",
    "REMIXQ_RECONCILE_INTERVAL": "1",
    "REMIXQ_RECONCILE_BACKOFF_CAP": "4",
    "REMIXQ_RELAY_INTERVAL": "1",
    "REMIXQ_RELAY_PENDING_GRACE": "1",
    "REMIXQ_RELAY_QUEUED_STALE": "5",
    "REMIXQ_CLAIM_LEASE": "5",
    "REMIXQ_HTTP_READ_TIMEOUT": "4",  # inside the claim lease, as in production
    "REMIXQ_SUBMIT_BACKOFF_BASE": "0.2",
    "REMIXQ_SUBMIT_BACKOFF_CAP": "2",
}

# What decides how soon lost work comes back: the scenarios that time a recovery leave these at
# their defaults (remixq/config.py) and shorten only the rest.
RECOVERY_SETTINGS = (
    "REMIXQ_RECONCILE_AFTER",
    "REMIXQ_RECONCILE_INTERVAL",
    "REMIXQ_RECONCILE_BACKOFF_CAP",
    "REMIXQ_RELAY_INTERVAL",
    "REMIXQ_RELAY_PENDING_GRACE",
    "REMIXQ_RELAY_QUEUED_STALE",
    "REMIXQ_CLAIM_LEASE",
    "REMIXQ_HTTP_READ_TIMEOUT",
)
DEFAULT_TIMING = {k: v for k, v in FAST_SETTINGS.items() if k not in RECOVERY_SETTINGS}
BACKENDS = ("postgresql", "sqlite")

# Deadlines of the waits: a campaign takes seconds, but a shared 2-core CI machine may be slow.
DEADLINE = 180.0

# Results take 50-350 ms each, so a campaign is a stream of webhooks rather than one spike.
DEFAULT_KNOBS: dict[str, Any] = {"latency_ms": 200, "latency_jitter_ms": 150}
# Results spread over 0.5-5.5 s: a stream of webhooks long enough to break something in.
STREAM_KNOBS: dict[str, Any] = {"latency_ms": 3000, "latency_jitter_ms": 2500}


def knob_args(knobs: Mapping[str, Any]) -> tuple[str, ...]:
    args: list[str] = []
    for name, value in {**DEFAULT_KNOBS, **knobs}.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return tuple(args)


@contextmanager
def chaos_stack(
    tmp: Path,
    *,
    backend: str = "postgresql",
    knobs: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    processes: tuple[str, ...] = ("simulator", "receiver", "worker"),
    beat: bool = True,
    timing: str = "fast",
    broker: str = "redis",
) -> Iterator[tuple[Stack, Any]]:
    """The real processes on PostgreSQL and a private Redis, or a private RabbitMQ node with
    `broker="rabbitmq"` (yielded too, to be restarted; the provider limit stays in the test
    Redis then), or on the embedded default (`backend="sqlite"`: no broker server, yielded as
    None; the worker runs beat itself, so `beat` adds no process). `timing="defaults"` keeps
    the relay, reconciler and claim settings at their defaults (`RECOVERY_SETTINGS`)."""
    assert timing in ("fast", "defaults"), timing
    settings = {**(FAST_SETTINGS if timing == "fast" else DEFAULT_TIMING), **(env or {})}
    if backend == "sqlite":
        with running_stack(
            tmp,
            backend="sqlite",
            sim_args=knob_args(knobs or {}),
            env=settings,
            processes=processes,
        ) as stack:
            stack.timing = timing
            yield stack, None
        return
    private = (
        private_rabbitmq() if broker == "rabbitmq" else private_redis(tmp / "redis")
    )
    with (
        private as server,
        running_stack(
            tmp,
            backend="postgresql",
            database="chaos",
            broker_url=server.url(),
            sim_args=knob_args(knobs or {}),
            env=settings,
            processes=processes,
            beat=beat,
        ) as stack,
    ):
        stack.timing = timing
        yield stack, server


@dataclass
class CampaignRun:
    """One campaign through a stack, timed from its submission to its last final job."""

    stack: Stack
    name: str
    jobs: int
    campaign_id: int = 0
    submitted_at: float = 0.0
    all_accepted_at: float | None = None
    final_at: float | None = None
    results: int = 0  # images the campaign asks for
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def submit(cls, stack: Stack, lines: list[dict[str, Any]], name: str) -> CampaignRun:
        run = cls(stack, name, len(lines))
        run.results = sum(int(line.get("numberResults", 1)) for line in lines)
        run.submitted_at = time.monotonic()
        run.campaign_id = stack.submit(lines, name)
        # The moment the provider has every task is watched in the background, so that it is
        # known to 0.1 s even while the test holds an outage.
        threading.Thread(target=run._watch_acceptance, daemon=True).start()
        return run

    # -- progress -------------------------------------------------------------------------------

    def _watch_acceptance(self) -> None:
        deadline = time.monotonic() + 300
        while self.all_accepted_at is None and self.final_at is None:
            if time.monotonic() > deadline:
                return
            with contextlib.suppress(requests.RequestException):
                self.accepted()
            time.sleep(0.1)

    def accepted(self) -> int:
        count = int(self.stack.sim_stats(tasks=False)["tasks_accepted"])
        if count >= self.jobs and self.all_accepted_at is None:
            self.all_accepted_at = time.monotonic()
        return count

    def wait_accepted(self, share: float, timeout: float = DEADLINE) -> None:
        """Until the simulator has accepted `share` of the campaign's tasks."""
        wanted = max(1, int(self.jobs * share))
        wait_until(
            lambda: self.accepted() >= wanted,
            timeout=timeout,
            interval=0.05,
            what=f"{wanted} tasks accepted",
        )

    def progress(self) -> Counter[str]:
        with Session(self.stack.engine) as session:
            rows = session.execute(
                select(Job.status, func.count())
                .where(Job.campaign_id == self.campaign_id)
                .group_by(Job.status)
            )
            return Counter(dict(rows.all()))

    def wait_final(self, timeout: float = DEADLINE, *, supervised: tuple[str, ...] = ()) -> None:
        """Until every job is final. A process in `supervised` that exits is started again,
        as the deployment's restart policy would, and counted; any other exit fails the test."""

        def all_final() -> bool:
            for name in self.stack.revive(supervised):
                restarts = self.notes.setdefault("restarted_by_supervisor", {})
                restarts[name] = restarts.get(name, 0) + 1
            self.stack.check_alive()
            return sum(n for s, n in self.progress().items() if s in FINAL) == self.jobs

        try:
            wait_until(all_final, timeout=timeout, interval=0.2, what="every job to be final")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; statuses: {dict(self.progress())}") from None
        self.final_at = time.monotonic()

    def wait_webhooks(self, delivered: int, timeout: float = DEADLINE) -> None:
        """Until the simulator has delivered `delivered` webhooks: the burst is under way."""
        wait_until(
            lambda: self.stack.sim_stats(tasks=False)["webhooks"]["succeeded"] >= delivered,
            timeout=timeout,
            what="the webhook burst",
        )

    def fault_injected(self) -> None:
        """Note how many results had no webhook delivered yet when the fault struck (the
        scenario only means something if some did not)."""
        delivered = self.stack.sim_stats(tasks=False)["webhooks"]["succeeded"]
        self.notes["webhooks_pending_at_fault"] = self.results - delivered

    def fault_over(self) -> None:
        """The injected fault has ended (the process is back, the outage over): recovery is
        timed from here to the last final job."""
        self.notes["fault_over_at"] = time.monotonic()

    def settle(self, timeout: float = DEADLINE) -> None:
        """Wait until the simulator has no webhook left to deliver: every copy it meant to send
        (one per result and per failed task, none if dropped, two if duplicated) succeeded or
        was given up. Checked after that, the invariants also cover late redeliveries."""

        def settled() -> bool:
            stats = self.stack.sim_stats(tasks=False)
            hooks = stats["webhooks"]
            copies = (
                stats["results_generated"]
                + stats["tasks_failed"]
                - hooks["dropped"]
                + hooks["duplicated"]
            )
            return bool(hooks["succeeded"] + hooks["gave_up"] >= copies)

        wait_until(settled, timeout=timeout, interval=0.2, what="the last webhook delivery")

    # -- the invariants and the figures ---------------------------------------------------------

    def verify(
        self,
        *,
        failures_expected: bool = False,
        failure_code: str = assumptions.DEFAULT_FAILURE_CODE,
    ) -> dict[str, Any]:
        """Once the provider has nothing left to send, assert the exactness invariants; return
        the scenario's figures."""
        self.settle()
        stats = self.stack.sim_stats()
        jobs = self.stack.jobs(self.campaign_id)
        statuses = Counter(job.status for job in jobs)
        assert set(statuses) <= FINAL, statuses

        failed = [job for job in jobs if job.status == "failed"]
        # Only the provider's own generation failures may fail a job; nothing else may.
        assert len(failed) == stats["tasks_failed"], (len(failed), stats["tasks_failed"])
        if not failures_expected:
            assert not failed, [(job.task_uuid, job.error_code) for job in failed]
        for job in failed:
            assert job.error_code == failure_code, job.error_code
            assert not job.images

        completed = [job for job in jobs if job.status == "completed"]
        for job in completed:
            assert job.results_received == len(job.images) == job.number_results, job.task_uuid
        images = [image for job in jobs for image in job.images]
        image_uuids = {str(image.image_uuid) for image in images}
        expected_images = sum(job.number_results for job in completed)
        assert len(images) == len(image_uuids) == expected_images
        assert stats["results_generated"] == expected_images

        stored_cost = sum((image.cost or Decimal(0) for image in images), Decimal(0))
        assert all(image.cost is not None for image in images)
        assert stored_cost == Decimal(stats["cost_total"]), (stored_cost, stats["cost_total"])

        tasks = stats["tasks"]
        assert set(tasks) == {str(job.task_uuid) for job in jobs}
        not_once = {uuid: c["accepted"] for uuid, c in tasks.items() if c["accepted"] != 1}
        assert not not_once, f"tasks not accepted exactly once: {not_once}"
        attempts = [tasks[str(job.task_uuid)]["attempts"] for job in jobs]

        inbox = self._inbox({str(job.task_uuid): job.submitted_at for job in jobs})
        assert not inbox["stuck"], f"{inbox['stuck']} inbox rows never applied"
        assert inbox["named"] == image_uuids  # every image came through the inbox, and stayed

        end = self.final_at or time.monotonic()
        webhooks = stats["webhooks"]
        figures: dict[str, Any] = {
            "backend": self.stack.backend,
            "timing": self.stack.timing,
            "jobs": len(jobs),
            "completed": len(completed),
            "failed": len(failed),
            "images": len(images),
            "images_expected": expected_images,
            "cost_usd": str(stored_cost),
            "provider_cost_usd": stats["cost_total"],
            "webhook_deliveries": webhooks["succeeded"],
            "webhooks_dropped": webhooks["dropped"],
            "webhooks_duplicated": webhooks["duplicated"],
            "webhook_attempts_failed": webhooks["failed"],
            "webhooks_given_up": webhooks["gave_up"],
            "duplicates_ignored": inbox["result_deliveries"] - inbox["stored_from_webhook"],
            "recovered_by_reconciler": inbox["stored_from_poll"],
            "get_response_calls": stats["get_response_calls"],
            "submissions_per_task_max": max(attempts),
            "submissions_per_task_mean": round(statistics.fmean(attempts), 3),
            "conflicts": stats["conflicts"],
            "faults": {kind: n for kind, n in stats["faults"].items() if n},
            "campaign_s": round(end - self.submitted_at, 2),
            "time_to_reconcile_s": (
                round(end - self.all_accepted_at, 2) if self.all_accepted_at else None
            ),
            **{k: v for k, v in self.notes.items() if k != "fault_over_at"},
        }
        if "fault_over_at" in self.notes:
            figures["recovery_s"] = round(end - self.notes["fault_over_at"], 2)
            figures["recovery_from"] = "fault over"
        elif inbox["poll_waits"]:
            # A fault that never ends (webhooks lost all along): recovery is how long the worst
            # lost result waited, from its task's acceptance to the poll that stored it.
            figures["recovery_s"] = round(max(inbox["poll_waits"]), 2)
            figures["recovery_from"] = "acceptance"
        return figures

    def _inbox(self, submitted_at: Mapping[str, Any]) -> dict[str, Any]:
        """What the inbox says: rows stored but never applied (a half-written delivery would
        leave one), result webhooks delivered, for each image (and each task failure) the
        source of the first row that named it (the one that stored it: every later one was
        ignored), and how long after its task's acceptance each poll stored its first news."""
        with Session(self.stack.engine) as session:
            rows = session.execute(
                select(
                    WebhookEvent.id,
                    WebhookEvent.source,
                    WebhookEvent.status,
                    WebhookEvent.body,
                    WebhookEvent.received_at,
                    WebhookEvent.task_uuid,
                ).order_by(WebhookEvent.received_at, WebhookEvent.id)
            ).all()
        stuck = sum(1 for row in rows if row.status == "received")
        first_source: dict[str, str] = {}
        failure_source: dict[str, str] = {}
        poll_waits: list[float] = []
        deliveries = 0
        for row in rows:
            body = json.loads(row.body)
            firsts = 0
            for image_uuid in _images_named(body):
                firsts += image_uuid not in first_source
                first_source.setdefault(image_uuid, row.source)
                deliveries += row.source == "webhook"
            for task_uuid in _failures_named(body):
                firsts += task_uuid not in failure_source
                failure_source.setdefault(task_uuid, row.source)
            accepted = submitted_at.get(str(row.task_uuid or "")) if row.source == "poll" else None
            if firsts and accepted is not None:
                poll_waits.append((row.received_at - accepted).total_seconds())
        by_webhook = {uuid for uuid, source in first_source.items() if source == "webhook"}
        return {
            "stuck": stuck,
            "result_deliveries": deliveries,
            "named": set(first_source),
            "stored_from_webhook": len(by_webhook),
            "stored_from_poll": len(first_source) - len(by_webhook),
            "poll_waits": poll_waits,
        }


def _images_named(payload: Any) -> list[str]:
    """The imageUUIDs of a body: a bare result, {"data": [...]}, or a getResponse answer."""
    if not isinstance(payload, dict):
        return []
    if "data" in payload:
        items = payload["data"]
    elif "errors" in payload:
        items = []
    else:
        items = [payload]
    return [str(item["imageUUID"]).lower() for item in items if "imageUUID" in item]


def _failures_named(payload: Any) -> list[str]:
    """The taskUUIDs a body reports failed: {"errors": [...]} or items with status "error"."""
    if not isinstance(payload, dict):
        return []
    errors = [item for item in payload.get("errors") or [] if isinstance(item, dict)]
    items = [payload, *(i for i in payload.get("data") or [] if isinstance(i, dict))]
    errors += [item for item in items if item.get("status") == "error"]
    return [str(item["taskUUID"]).lower() for item in errors if "taskUUID" in item]


def record(request: Any, scenario: str, title: str, figures: Mapping[str, Any]) -> None:
    """Append the figures to $REMIXQ_RELIABILITY_REPORT (JSON lines), when it names a file.

    The test's docstring says what the scenario proves; the report quotes it.
    """
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    doc = " ".join((request.function.__doc__ or "").split())
    if figures.get("backend") == "sqlite":
        scenario += "-sqlite"
    line = {
        "scenario": scenario,
        "title": title,
        "test": request.node.nodeid,
        "proves": doc,
        **figures,
    }
    with Path(path).open("a") as out:
        out.write(json.dumps(line) + "\n")
