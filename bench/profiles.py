"""Profiles of the two hot paths, in process, with the standard library's cProfile.

- Webhook ingest: the receiver's WSGI app (`create_app`) called directly with pre-built
  requests, on the bench PostgreSQL database: everything a gunicorn worker runs per webhook
  except gunicorn's own parsing and writing.
- Submission: the worker's task body (`worker.tasks.submit`) called directly, against the
  simulator at zero latency: claim, provider call, record.

Two views of each: CPU time (timer = process time), which names what burns the cores, and the
number of SQL statements and transactions per operation, which names the round trips. Costs are
grouped by the package that spends them (own time), then the top functions are listed.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, event

_GROUPS = (
    ("psycopg", "psycopg (driver, incl. waits)"),
    ("sqlalchemy", "SQLAlchemy"),
    ("pydantic", "pydantic"),
    ("werkzeug", "Werkzeug"),
    ("flask", "Flask"),
    ("celery", "Celery"),
    ("kombu", "kombu"),
    ("requests", "requests"),
    ("urllib3", "urllib3"),
    ("http/client", "http.client"),
    ("json", "json"),
    ("remixq", "remixq"),
    ("webhook_receiver", "webhook_receiver"),
    ("worker", "worker"),
    ("socket", "socket"),
    ("ssl", "ssl"),
    ("logging", "logging"),
    ("uuid", "uuid"),
    ("decimal", "decimal"),
)


def _group(filename: str) -> str:
    if filename.startswith(("~", "<")):
        return "builtins (C calls)"
    path = filename.replace("\\", "/")
    for key, name in _GROUPS:
        if f"/{key}/" in path or path.endswith(f"/{key}.py"):
            return name
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    return "stdlib/other"


@dataclass
class WireCount:
    """What went over the wire between the client and PostgreSQL, from libpq's protocol trace:
    statements (Execute and simple Query messages, BEGIN/COMMIT included) and round trips
    (each time the client sent something, then read the server's answer)."""

    statements: Counter[str] = field(default_factory=Counter)
    round_trips: int = 0


@dataclass
class Profile:
    title: str
    operations: int
    cpu_s: float
    wall_s: float
    by_group: list[tuple[str, float]]
    top: list[tuple[str, float, int]]
    wire: WireCount = field(default_factory=WireCount)

    @property
    def cpu_ms_per_op(self) -> float:
        return self.cpu_s / self.operations * 1000

    def markdown(self, top: int = 15) -> str:
        ops = self.operations
        out = io.StringIO()
        out.write(
            f"{ops} operations; {self.cpu_ms_per_op:.3f} ms CPU and "
            f"{self.wall_s / ops * 1000:.3f} ms wall each (profiler overhead included)."
        )
        statements = self.wire.statements
        if statements:
            kinds = ", ".join(f"{kind} {n / ops:.2f}" for kind, n in statements.most_common())
            out.write(
                f" PostgreSQL per operation: {sum(statements.values()) / ops:.2f} statements "
                f"({kinds}), {self.wire.round_trips / ops:.2f} network round trips."
            )
        out.write("\n\n| spent in (own CPU time) | share | ms per op |\n| --- | ---: | ---: |\n")
        total = sum(t for _, t in self.by_group) or 1.0
        for name, seconds in self.by_group[:12]:
            out.write(f"| {name} | {seconds / total:.0%} | {seconds / ops * 1000:.3f} |\n")
        out.write("\n| top functions (own CPU time) | ms per op | calls per op |\n")
        out.write("| --- | ---: | ---: |\n")
        for name, seconds, calls in self.top[:top]:
            out.write(f"| `{name}` | {seconds / ops * 1000:.3f} | {calls / ops:.1f} |\n")
        return out.getvalue()


@contextmanager
def trace_wire(engine: Engine, directory: Path) -> Iterator[WireCount]:
    """Trace every connection `engine` opens inside the block (its pool is emptied first)."""
    from psycopg import pq

    path = directory / f"pqtrace-{time.monotonic_ns()}.txt"
    sink = path.open("w")
    traced: list[Any] = []

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.pgconn.trace(sink.fileno())
        dbapi_connection.pgconn.set_trace_flags(
            pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE
        )
        traced.append(dbapi_connection)

    count = WireCount()
    engine.dispose()
    event.listen(engine, "connect", on_connect)
    try:
        yield count
    finally:
        event.remove(engine, "connect", on_connect)
        for connection in traced:
            if not connection.closed:
                connection.pgconn.untrace()
        engine.dispose()
        sink.close()
    previous = ""
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        side, kind = parts[0], parts[2].strip()
        if side == "F" and kind == "Execute":
            count.statements["extended"] += 1
        elif side == "F" and kind == "Query":
            words = parts[3].strip().strip('"').split()
            count.statements[words[0].upper() if words else "?"] += 1
        if side == "B" and previous == "F":
            count.round_trips += 1
        previous = side
    if not os.environ.get("BENCH_KEEP_TRACE"):
        path.unlink()


class _Completed:
    """The calls a profiler has seen return, from another thread than the profiled one, which
    may still be running: `create_stats` would close its pending calls with this thread's
    clock (the writer's wait for its next batch would show this thread's CPU time)."""

    def __init__(self, profiler: cProfile.Profile):
        profiler.snapshot_stats()
        self.stats = profiler.stats

    def create_stats(self) -> None:
        pass


def profile_calls(
    title: str,
    calls: list[Callable[[], Any]],
    engine: Engine,
    scratch: Path,
    *,
    new_threads: bool = False,
) -> Profile:
    """Run each call once under a CPU-time profiler, tracing what `engine` sends PostgreSQL.

    `new_threads`: also profile the threads the calls start (the receiver's writer), from their
    first instruction. The CPU figure includes the profiler's own overhead (cProfile roughly
    doubles the cost of Python calls); the shares between packages are what to read.
    """
    profiler = cProfile.Profile(time.thread_time)
    started: list[cProfile.Profile] = []

    def profile_new_thread(*_args: Any) -> None:
        sys.setprofile(None)
        thread_profiler = cProfile.Profile(time.thread_time)
        started.append(thread_profiler)
        thread_profiler.enable()

    with trace_wire(engine, scratch) as wire:
        if new_threads:
            threading.setprofile(profile_new_thread)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        profiler.enable()
        for call in calls:
            call()
        profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        threading.setprofile(None)
    stats = pstats.Stats(profiler)
    for thread_profiler in started:
        stats.add(cast(Any, _Completed(thread_profiler)))
    groups: Counter[str] = Counter()
    top: list[tuple[str, float, int]] = []
    for (filename, line, name), (_cc, calls_n, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        groups[_group(filename)] += tottime
        short = filename.replace("\\", "/")
        if "site-packages/" in short:
            short = short.split("site-packages/", 1)[1]
        elif "/work/" in short:
            short = short.rsplit("/", 2)[-2] + "/" + short.rsplit("/", 1)[-1]
        else:
            short = short.rsplit("/", 1)[-1]
        top.append((f"{short}:{line} {name}", tottime, calls_n))
    top.sort(key=lambda item: -item[1])
    return Profile(
        title=title,
        operations=len(calls),
        cpu_s=cpu,
        wall_s=wall,
        by_group=[(name, float(seconds)) for name, seconds in groups.most_common()],
        top=top[:25],
        wire=wire,
    )
