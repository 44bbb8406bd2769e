"""A small HTTP/1.1 load generator: several processes, each driving keep-alive connections from
an asyncio event loop, posting pre-built requests as fast as the server answers.

It is written for this bench so that nothing outside the standard library is needed (wrk would
need a Lua script per body). The requests are split round-robin between the processes; each
connection sends its next request as soon as the previous answer is complete, so the number of
connections is the number of requests in flight. Latency is measured per request from the write
to the last byte of the answer. A connection the server closes is reopened, and a request left
unanswered on it is sent again (counted as `resent`).

With `duration`, the run lasts that long instead (the requests are sent over again from the
first when they run out, counted as `repeated`), and each answer's end time is kept beside its
latency, for the statistics per window of a sustained run (bench.windows).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType
from typing import Any

from bench.windows import percentile


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ns: list[int]
    statuses: Counter[int]
    resent: int
    client_cpu_s: float
    errors: list[str] = field(default_factory=list)
    ends_ns: list[int] = field(default_factory=list)  # time.monotonic_ns() of each answer
    started_ns: int = 0  # time.monotonic_ns() at the start
    repeated: int = 0  # requests sent again after the corpus ran out (`duration`)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(sorted(self.latencies_ns), q) / 1e6


def _wire(host: str, port: int, request: Request) -> bytes:
    head = (
        f"POST {request.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(request.body)}\r\n\r\n"
    )
    return head.encode() + request.body


class _Shared:
    def __init__(self, wires: list[bytes], deadline_ns: int | None = None) -> None:
        self.wires = wires
        self.deadline_ns = deadline_ns
        self.next = 0
        self.latencies: list[int] = []
        self.ends: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.resent = 0
        self.open = 0
        self.done = asyncio.get_running_loop().create_future()
        self.errors: list[str] = []

    def more(self) -> bool:
        if self.deadline_ns is not None:
            return time.monotonic_ns() < self.deadline_ns
        return self.next < len(self.wires)

    def take(self) -> int | None:
        if not self.more():
            return None
        self.next += 1
        return (self.next - 1) % len(self.wires)


class _Connection(asyncio.Protocol):
    def __init__(self, shared: _Shared, host: str, port: int) -> None:
        self.shared, self.host, self.port = shared, host, port
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.current: int | None = None
        self.sent_at = 0
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.current is not None:  # reopened after the server closed it mid-request
            self._write()
        else:
            self._send_next()

    def _send_next(self) -> None:
        assert self.transport is not None
        self.current = self.shared.take()
        if self.current is None:
            self.finished = True
            self.transport.close()
            return
        self._write()

    def _write(self) -> None:
        assert self.transport is not None and self.current is not None
        self.sent_at = time.monotonic_ns()
        self.transport.write(self.shared.wires[self.current])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name == "content-length":
                    length = int(value)
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            now = time.monotonic_ns()
            self.shared.latencies.append(now - self.sent_at)
            self.shared.ends.append(now)
            self.shared.statuses[int(head[9:12])] += 1
            self.buffer = self.buffer[total:]
            self.current = None
            if "connection: close" in head:
                self.finished = True
                assert self.transport is not None
                self.transport.close()
                if self.shared.more():
                    _reopen(self.shared, self.host, self.port, None)
                return
            self._send_next()
            if self.finished:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.shared.open -= 1
        if not self.finished and self.current is not None:
            self.shared.resent += 1
            if self.shared.resent > 1000:
                self.shared.errors.append(f"too many dropped connections; last: {exc!r}")
            else:
                _reopen(self.shared, self.host, self.port, self.current)
        if self.shared.open == 0 and not self.shared.done.done():
            self.shared.done.set_result(None)


def _reopen(shared: _Shared, host: str, port: int, current: int | None) -> None:
    loop = asyncio.get_running_loop()

    def factory() -> _Connection:
        conn = _Connection(shared, host, port)
        conn.current = current
        return conn

    shared.open += 1
    task = loop.create_task(loop.create_connection(factory, host, port))
    task.add_done_callback(lambda t: _note_failure(shared, t))


def _note_failure(shared: _Shared, task: asyncio.Task[Any]) -> None:
    if task.cancelled() or task.exception() is None:
        return
    shared.open -= 1
    shared.errors.append(repr(task.exception()))
    if shared.open == 0 and not shared.done.done():
        shared.done.set_result(None)


async def _drive(
    host: str,
    port: int,
    wires: list[bytes],
    connections: int,
    timeout: float,
    duration: float | None = None,
) -> tuple[float, float, _Shared]:
    deadline = None if duration is None else time.monotonic_ns() + int(duration * 1e9)
    shared = _Shared(wires, deadline)
    started = time.monotonic()
    for _ in range(min(connections, len(wires))):
        _reopen(shared, host, port, None)
    if not wires:
        shared.done.set_result(None)
    try:
        await asyncio.wait_for(asyncio.shield(shared.done), timeout)
    except TimeoutError:
        shared.errors.append(f"load did not finish in {timeout:.0f}s")
    return started, time.monotonic(), shared


def _child(
    host: str,
    port: int,
    requests: list[Request],
    connections: int,
    timeout: float,
    duration: float | None,
    go: EventType,
    results: multiprocessing.Queue[Any],
) -> None:
    wires = [_wire(host, port, r) for r in requests]
    go.wait(60)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started, ended, shared = asyncio.run(_drive(host, port, wires, connections, timeout, duration))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    results.put(
        (
            started,
            ended,
            shared.latencies,
            dict(shared.statuses),
            shared.resent,
            cpu,
            shared.errors,
            shared.ends,
            max(0, shared.next - len(wires)),
        )
    )


def run_load(
    host: str,
    port: int,
    requests: Sequence[Request],
    *,
    connections: int = 16,
    processes: int = 2,
    timeout: float = 600,
    duration: float | None = None,
) -> LoadResult:
    """Post every request once, or (`duration`) as many as that many seconds take;
    `connections` in flight in total, over `processes` processes."""
    processes = max(1, min(processes, connections))
    # fork: the children inherit the prepared requests; the bench process holds no threads.
    context = multiprocessing.get_context("fork")
    go = context.Event()
    results: multiprocessing.Queue[Any] = context.Queue()
    children = []
    for index in range(processes):
        share = list(requests[index::processes])
        conns = connections // processes + (1 if index < connections % processes else 0)
        child = context.Process(
            target=_child,
            args=(host, port, share, conns, timeout, duration, go, results),
            daemon=True,
        )
        child.start()
        children.append(child)
    time.sleep(0.2)
    started_ns = time.monotonic_ns()
    go.set()
    gathered = []
    for _ in children:
        gathered.append(results.get(timeout=timeout + 120))
    for child in children:
        child.join(10)
        if child.is_alive():
            child.kill()
    latencies: list[int] = []
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    ends: list[int] = []
    for _, _, lat, stat, _, _, errs, end, _ in gathered:
        latencies.extend(lat)
        statuses.update(stat)
        errors.extend(errs)
        ends.extend(end)
    return LoadResult(
        requests=len(latencies),
        seconds=max(g[1] for g in gathered) - min(g[0] for g in gathered),
        latencies_ns=latencies,
        statuses=statuses,
        resent=sum(g[4] for g in gathered),
        client_cpu_s=sum(g[5] for g in gathered),
        errors=errors,
        ends_ns=ends,
        started_ns=started_ns,
        repeated=sum(g[8] for g in gathered),
    )
