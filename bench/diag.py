"""What happens during a stall, recorded by means that do not need a quiet machine.

- In each server worker (`install_worker_probes`, gunicorn's `post_worker_init` hook of
  `bench.serve --diag DIR`): every full (generation 2) garbage collection, and any collection
  over 5 ms, with its duration; and under gevent, each time the hub was blocked past
  `GEVENT_MAX_BLOCKING_TIME` (gevent's monitor thread), with the blocking greenlet's stack.
- In PostgreSQL (`PgSampler`, a process of its own): `pg_stat_activity` every 20 ms (the bench
  database's backends, autovacuum workers, the checkpointer), and the server's log lines about
  checkpoints and autovacuum written meanwhile.

Every event carries a time.monotonic_ns() stamp, the clock of the load generator's answers,
so that `explain` can say what overlapped each stall (bench.windows.stalls).
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from bench.procs import rss_bytes
from bench.windows import Stall

GC_SLOW_NS = 5_000_000
BATCH_SLOW_NS = 30_000_000
# gevent reads these when its hub starts (in the worker, after gunicorn's fork).
GEVENT_ENV = {"GEVENT_MONITOR_THREAD_ENABLE": "true", "GEVENT_MAX_BLOCKING_TIME": "0.02"}
PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")


# --- in the server's workers ------------------------------------------------------------------


def install_worker_probes(directory: Path) -> None:
    """Record this process's slow collections and hub blocks in `directory`/<pid>.jsonl."""
    fd = os.open(directory / f"{os.getpid()}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    started: list[int] = [0, 0]

    def write(event: dict[str, Any]) -> None:
        os.write(fd, (json.dumps(event) + "\n").encode())

    def on_gc(phase: str, info: dict[str, int]) -> None:
        now, cpu = time.monotonic_ns(), time.thread_time_ns()
        if phase == "start":
            started[:] = [now, cpu]
            return
        spent = now - started[0]
        if info["generation"] == 2 or spent >= GC_SLOW_NS:
            write(
                {
                    "kind": "gc",
                    "pid": os.getpid(),
                    "end_ns": now,
                    "ns": spent,
                    "cpu_ns": cpu - started[1],
                    "generation": info["generation"],
                    "collected": info["collected"],
                    "objects": len(gc.get_objects(2)) if info["generation"] == 2 else None,
                }
            )

    gc.callbacks.append(on_gc)
    _probe_writer(write)
    try:
        from gevent import events
        from zope import event as zope_event
    except ImportError:  # pragma: no cover (the bench always has gevent)
        return

    def on_event(evt: Any) -> None:
        if isinstance(evt, events.EventLoopBlocked):
            stack = [line.strip() for line in evt.info if line.strip().startswith("File ")]
            write(
                {
                    "kind": "blocked",
                    "pid": os.getpid(),
                    "end_ns": time.monotonic_ns(),
                    "ns": int(evt.blocking_time * 1e9),
                    "stack": stack[-6:],
                }
            )

    zope_event.subscribers.append(on_event)


def _probe_writer(write: Any) -> None:
    """Time the receiver's batches (webhook_receiver.group_commit): wall and CPU time of each
    batch, and the statement's round trip, for the batches over BATCH_SLOW_NS."""
    try:
        from remixq.ingest import postgres
        from webhook_receiver import group_commit
    except ImportError:  # pragma: no cover
        return
    statement_ns: list[int] = [0]
    execute, write_batch = postgres.PostgresStore._execute, group_commit.GroupCommit._write

    def timed_execute(self: Any, batch: Any, *, events: bool) -> Any:
        t0 = time.monotonic_ns()
        try:
            return execute(self, batch, events=events)
        finally:
            statement_ns[0] += time.monotonic_ns() - t0

    def timed_write(self: Any, batch: Any) -> None:
        t0, c0 = time.monotonic_ns(), time.thread_time_ns()
        statement_ns[0] = 0
        try:
            write_batch(self, batch)
        finally:
            spent = time.monotonic_ns() - t0
            if spent >= BATCH_SLOW_NS:
                write(
                    {
                        "kind": "batch",
                        "pid": os.getpid(),
                        "end_ns": t0 + spent,
                        "ns": spent,
                        "cpu_ns": time.thread_time_ns() - c0,
                        "statement_ns": statement_ns[0],
                        "size": len(batch),
                    }
                )

    postgres.PostgresStore._execute = timed_execute  # type: ignore[method-assign]
    group_commit.GroupCommit._write = timed_write  # type: ignore[method-assign]


def read_worker_events(directory: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                found.append(json.loads(line))
    return sorted(found, key=lambda e: e["end_ns"])


# --- PostgreSQL ---------------------------------------------------------------------------------

_ACTIVITY = """
SELECT backend_type, state, wait_event_type, wait_event, left(query, 60)
FROM pg_stat_activity
WHERE pid <> pg_backend_pid()
  AND (datname = %s OR backend_type IN ('checkpointer', 'autovacuum worker'))
"""


def _sample(url: str, database: str, out: Path, stop: EventType, pids: Sequence[int]) -> None:
    import psycopg

    count = 0
    with out.open("w") as sink:
        while not stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
                    while not stop.is_set():
                        now = time.monotonic_ns()
                        rows = connection.execute(_ACTIVITY, (database,)).fetchall()
                        sample: dict[str, Any] = {"t": now, "rows": rows}
                        if count % 50 == 0:  # the server's memory once a second
                            sample["rss"] = rss_bytes(pids)
                        sink.write(json.dumps(sample) + "\n")
                        count += 1
                        time.sleep(0.02)
            except psycopg.OperationalError:  # a terminated connection: sample on a new one
                time.sleep(0.1)


@dataclass
class PgSampler:
    """`pg_stat_activity` sampled in a process of its own, and the server log's new lines."""

    url: str  # a libpq URL
    database: str
    out: Path
    pids: Sequence[int] = ()  # the server's processes, whose memory is sampled too
    _stop: EventType | None = None
    _process: Any = None
    _log_offset: int = 0

    def __enter__(self) -> PgSampler:
        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._process = context.Process(
            target=_sample,
            args=(self.url, self.database, self.out, self._stop, list(self.pids)),
            daemon=True,
        )
        self._process.start()
        try:
            self._log_offset = PG_LOG.stat().st_size
        except OSError:
            self._log_offset = -1
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._stop is not None
        self._stop.set()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()

    def samples(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def log_lines(self) -> list[str]:
        """The server log's lines about checkpoints and autovacuum written during the run
        (the cluster's, so other databases' too)."""
        if self._log_offset < 0:
            return []
        try:
            with PG_LOG.open("rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return []
        keep = ("checkpoint", "automatic vacuum", "automatic analyze")
        return [line for line in text.splitlines() if any(k in line for k in keep)]


# --- what overlapped each stall -----------------------------------------------------------------


@dataclass
class Evidence:
    """Per stall, what the probes saw in the same interval; and the run's totals."""

    gc_full: int = 0
    gc_full_ms: list[float] = field(default_factory=list)
    blocked_ms: list[float] = field(default_factory=list)
    blocked_where: Counter[str] = field(default_factory=Counter)
    waits: Counter[str] = field(default_factory=Counter)  # active receiver backends, run-wide
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per stall


def _waits(rows: Sequence[Sequence[Any]]) -> list[str]:
    found = []
    for backend, state, wtype, wevent, query in rows:
        if backend == "client backend" and state == "active":
            found.append(f"{wtype}:{wevent}" if wtype else "CPU")
        elif backend == "autovacuum worker" and query:
            found.append(f"autovacuum ({query.removeprefix('autovacuum: ')})")
        elif backend == "checkpointer" and wevent not in (None, "CheckpointerMain"):
            found.append(f"checkpointer:{wevent}")
    return found


def explain(
    stalls: Sequence[Stall],
    start_ns: int,
    worker_events: Sequence[dict[str, Any]],
    samples: Sequence[dict[str, Any]],
) -> Evidence:
    evidence = Evidence()
    for event in worker_events:
        if event["kind"] == "gc" and event["generation"] == 2:
            evidence.gc_full += 1
            evidence.gc_full_ms.append(event["ns"] / 1e6)
        elif event["kind"] == "blocked":
            evidence.blocked_ms.append(event["ns"] / 1e6)
            evidence.blocked_where[" < ".join(reversed(event["stack"][-2:]))[:160]] += 1
    for sample in samples:
        evidence.waits.update(_waits(sample["rows"]))
    for stall in stalls:
        lo = start_ns + int(stall.start_s * 1e9)
        hi = start_ns + int(stall.end_s * 1e9)
        inside = [e for e in worker_events if lo <= e["end_ns"] and e["end_ns"] - e["ns"] <= hi]
        gcs = [e for e in inside if e["kind"] == "gc"]
        blocks = [e for e in inside if e["kind"] == "blocked"]
        waits: Counter[str] = Counter()
        for sample in samples:
            if lo <= sample["t"] <= hi:
                waits.update(_waits(sample["rows"]))
        evidence.rows.append(
            {
                "at s": round(stall.start_s, 2),
                "lasted ms": round((hi - lo) / 1e6),
                "slow requests": stall.requests,
                "max ms": round(stall.max_ms),
                "gc in workers": ", ".join(
                    f"gen{e['generation']} {e['ns'] / 1e6:.0f} ms" for e in gcs
                )
                or "-",
                "hub blocked": ", ".join(f"{e['ns'] / 1e6:.0f} ms" for e in blocks) or "-",
                "postgres (samples)": ", ".join(f"{k} x{v}" for k, v in waits.most_common(4))
                or "-",
            }
        )
    return evidence
