"""The receiver's gunicorn worker: gevent's, with deadlines for slow clients and a bound on the
connections a process holds, the slowest shed first.

How gunicorn's gevent worker serves a connection (gunicorn/workers/ggevent.py, base_async.py):
each accepted connection runs `AsyncWorker.handle` in a greenlet of a gevent Pool of
`worker_connections`; when the pool is full the server stops accepting, and new connections
(real senders too) wait in the kernel's backlog. The accepted socket is gevent's (the worker
patches the listening sockets and the socket module before it loads the app), so every read
yields to the other greenlets: gunicorn's request parser (`gunicorn.http`) and the body the app
reads from `wsgi.input` (gunicorn's `Body` over a `SocketUnreader`) are cooperative. What they
lack is a deadline: the headers are read under `timeout_ctx()`, a `gevent.Timeout` of
`keepalive` seconds (5), and the body has none at all, so a client sending a valid webhook URL,
a large Content-Length and a byte now and then holds its greenlet, and its pool slot, forever.
Six hundred of them stopped every other webhook.

gunicorn has no setting for either (its `timeout` is the worker's heartbeat), and the
alternatives fall short: a socket timeout bounds each read, not a whole body (a byte every
timeout less a second goes on for ever); a `gevent.Timeout` in the app alone leaves the headers
and the pool to gunicorn. So `GuardedWorker` keeps gevent's worker and overrides a few of its
hooks (`timeout_ctx`, `load_wsgi`, `handle`, `handle_request`), with no copy of gunicorn's code:

- `timeout_ctx()`: a connection's first request must bring its headers within
  `header_timeout` seconds of the accept (later ones within `keepalive` of the previous answer,
  as before); past it the connection is closed without an answer, as nginx does.
- the WSGI app is wrapped (`load_wsgi`): the body is read through `_Input`, whose reads run
  under a `gevent.Timeout` of what is left of `body_timeout` (counted from the end of the
  headers). A body not read in time is answered 408 and the connection closed; the app never
  sees a late body.
- `handle()` keeps a record of every connection and its phase (headers, body, busy in the
  app, lingering). Above a high-water mark, `worker_connections` minus a reserve of a tenth,
  the connection that has waited longest in a phase where it owes us bytes (headers, body,
  lingering) is shed: its socket's read side is shut, which wakes its greenlet at once (a
  header read ends, a body read is answered 503 with Retry-After). This runs at each accept
  (and every SHED_INTERVAL), so the pool never fills and the server never stops accepting: a
  real sender, which sends its webhook in milliseconds, is accepted at once and done before
  it could become the oldest; a request being processed (waiting for its commit) is never
  shed. A grace period before shedding would cap the accept rate at the pool's size per
  grace: connections queued in the kernel's backlog in front of a real sender, as a
  reconnecting attacker keeps them, would then keep it waiting for seconds. Even so, an
  attacker that keeps more connections than the processes hold makes a webhook wait for those
  queued in front of it (a process sheds about a thousand a second): docs/security.md has the
  figures; the proxy's per-address limit is the answer to that.

An answer that refuses a body (408, 413, 503 from a shed body read) closes the connection;
after a 413 it closes lingering: the write side is shut after the answer and up to LINGER_BYTES
are read and discarded for up to LINGER_SECONDS, so that a sender that writes its whole body
before reading gets the answer rather than a connection reset (closing a socket with unread
data makes the kernel send a reset).

A reverse proxy in front (deploy/nginx/remixq.conf) buffers whole requests and has its own
timeouts and per-address limits; this worker is what holds when there is none, or when the
proxy itself is the slow client.
"""

from __future__ import annotations

import _socket
import json
import os
import resource
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from http import HTTPStatus
from itertools import islice
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker

# The phases of a connection. Only those where we wait for the client's bytes may be shed.
HEADERS, BODY, BUSY, LINGER = "headers", "body", "busy", "linger"
_SHEDDABLE = frozenset({HEADERS, BODY, LINGER})

SHED_INTERVAL = 1.0  # seconds between two checks of the high-water mark, besides each accept
RESERVE = 0.1  # of worker_connections, kept free for new connections
LINGER_BYTES = 4 * 1024 * 1024
LINGER_SECONDS = 2.0
FILES_BESIDE_CONNECTIONS = 100  # database connections, logs, the app's own
REPORT_INTERVAL = 60.0  # seconds between two log lines about shed and timed-out clients

# Answers after which the connection is closed: the request's body was refused (so is it after
# a body read refused by the guard, a shed 503). After a 413 it is closed lingering (the sender
# may be blocked writing its body); a 408 or a shed 503 goes to a slow sender, which is not.
_CLOSING = frozenset({408, 413})


class _Connection:
    """One accepted connection: its socket, its phase and since when, its current request.
    `live` holds the process's connections not shed, in the order they entered their phase
    (oldest first), so that the next to shed is found without a sort."""

    __slots__ = ("linger", "live", "phase", "request", "requests", "shed", "since", "sock")

    def __init__(self, sock: Any, live: dict[_Connection, None]):
        self.sock, self.live = sock, live
        self.requests = 0  # answered or being answered on this connection
        self.request: Any = None  # gunicorn's Request being served
        self.shed = False
        self.linger = False
        self.enter(HEADERS)

    def enter(self, phase: str) -> None:
        self.phase, self.since = phase, time.monotonic()
        if not self.shed:
            self.live.pop(self, None)
            self.live[self] = None

    def closed(self) -> None:
        self.live.pop(self, None)

    def close_after_answer(self, *, linger: bool) -> None:
        """The answer under way is this connection's last (closed lingering if `linger`)."""
        self.linger = linger
        if self.request is not None:
            self.request.must_close = True  # gunicorn answers "Connection: close"

    def shut(self) -> None:
        """Shed: shut the read side, which ends a read waiting on the socket with an EOF.

        In the kernel only, through a duplicate of the descriptor: gevent's own shutdown() also
        cancels the greenlet's wait with an EBADF error ("File descriptor was closed in another
        greenlet"), which gunicorn logs with a traceback, at a cost that capped shedding at a
        few hundred connections a second."""
        self.shed = True
        self.live.pop(self, None)
        with suppress(OSError):
            duplicate = _socket.socket(fileno=os.dup(self.sock.fileno()))
            try:
                duplicate.shutdown(socket.SHUT_RD)
            finally:
                duplicate.close()


class _Refused(BaseException):
    """A body read refused the request: raised past the app's own handlers (a BaseException,
    as gevent's Timeout is) and answered by `GuardedWorker._guard`."""

    def __init__(self, status: int, error: str, message: str, headers: Iterable[tuple[str, str]]):
        super().__init__(status)
        self.status, self.error, self.message = status, error, message
        self.headers = list(headers)


class _Input:
    """`wsgi.input` with a deadline: each read waits at most until the body's deadline."""

    def __init__(self, stream: Any, connection: _Connection, deadline: float, length: int | None):
        self._stream, self._connection = stream, connection
        self._deadline, self._length = deadline, length
        self._seen = 0
        self._done = False

    def read(self, size: int | None = None) -> bytes:
        return self._guarded(self._stream.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._guarded(self._stream.readline, size)

    def readlines(self, hint: int | None = None) -> list[bytes]:
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def _guarded(self, read: Callable[[int | None], bytes], size: int | None) -> bytes:
        if self._done:
            return read(size)
        data: bytes | None = None
        remaining = self._deadline - time.monotonic()
        if remaining > 0:
            with gevent.Timeout(remaining, False):
                data = read(size)
        if self._connection.shed:
            raise _Refused(
                503,
                "overloaded",
                "too many slow connections; retry later",
                [("Retry-After", "5")],
            )
        if data is None:
            raise _Refused(408, "request_timeout", "the request body was not sent in time", [])
        self._seen += len(data)
        if not data or (self._length is not None and self._seen >= self._length):
            self._done = True
            self._connection.enter(BUSY)
        return data


def _has_body(environ: dict[str, Any]) -> int | None:
    """The declared length (0 for none), or None for a body without one (chunked)."""
    if "HTTP_TRANSFER_ENCODING" in environ:
        return None
    value = environ.get("CONTENT_LENGTH") or "0"
    return int(value) if value.isdigit() else 0


class GuardedWorker(GeventWorker):
    """gevent's worker with header and body deadlines and shedding of slow connections;
    `guarded_worker()` makes one with its timeouts (gunicorn's config has no room for them)."""

    header_timeout = 10.0
    body_timeout = 10.0

    def init_process(self) -> None:
        self._connections: dict[Any, _Connection] = {}  # by greenlet
        self._live: dict[_Connection, None] = {}
        size = self.cfg.worker_connections
        self._high_water = size - max(1, int(size * RESERVE))
        self._shed_count = self._timed_out = 0
        self._open_files(size + FILES_BESIDE_CONNECTIONS)
        super().init_process()

    def _open_files(self, wanted: int) -> None:
        """Raise the process's soft limit on open files to hold `wanted` (many systems start
        services at 1024): past it, accept() fails and new connections wait in the backlog."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft >= wanted:
            return
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < wanted:
            self.log.warning(
                "open files limited to %d (hard limit): fewer than the %d connections a process"
                " may hold; raise it (ulimit -n) or lower REMIXQ_RECEIVER_CONNECTIONS",
                target,
                wanted - FILES_BESIDE_CONNECTIONS,
            )

    def run(self) -> None:
        gevent.spawn(self._watch)
        super().run()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi: Callable[..., Any] = self._guard(self.wsgi)

    # -- gunicorn's hooks ---------------------------------------------------------------------

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        me = gevent.getcurrent()
        connection = self._connections[me] = _Connection(client, self._live)
        self._shed()
        try:
            super().handle(listener, client, addr)
        finally:
            del self._connections[me]
            connection.closed()

    def timeout_ctx(self) -> gevent.Timeout:
        connection = self._connections.get(gevent.getcurrent())
        if connection is None:
            return super().timeout_ctx()
        if connection.requests == 0:  # since the accept
            return gevent.Timeout(
                max(0.001, connection.since + self.header_timeout - time.monotonic()), False
            )
        connection.enter(HEADERS)  # since the previous answer, as gunicorn does
        return gevent.Timeout(self.cfg.keepalive, False)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        connection = self._connections.get(gevent.getcurrent())
        if connection is not None:
            connection.requests += 1
            connection.request = req
            connection.enter(BODY)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            if connection is not None:
                connection.request = None
                if connection.linger:
                    self._linger(connection)

    # -- the guard ----------------------------------------------------------------------------

    def _guard(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            connection = self._connections.get(gevent.getcurrent())
            if connection is None:  # not served by handle() (gunicorn's HTTP/2 streams)
                return app(environ, start_response)
            length = _has_body(environ)
            if length == 0:
                connection.enter(BUSY)
            else:
                deadline = connection.since + self.body_timeout
                environ["wsgi.input"] = _Input(environ["wsgi.input"], connection, deadline, length)

            def starting(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                connection.enter(BUSY)
                code = int(status[:3])
                if code in _CLOSING:
                    connection.close_after_answer(linger=code == 413)
                return start_response(status, headers, exc_info)

            try:
                return app(environ, starting)
            except _Refused as refused:
                if refused.status == 408:
                    self._timed_out += 1
                document = json.dumps({"error": refused.error, "message": refused.message})
                body = document.encode()
                headers = [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    *refused.headers,
                ]
                phrase = HTTPStatus(refused.status).phrase
                connection.close_after_answer(linger=False)
                starting(f"{refused.status} {phrase}", headers, sys.exc_info())
                return [body]

        return guarded

    def _shed(self) -> None:
        """Shed the connections that owe us bytes longest, down to the high-water mark."""
        excess = len(self._live) - self._high_water
        if excess <= 0:
            return
        # Oldest first; those busy in the app are skipped (few: they are quickly done).
        victims = list(islice((c for c in self._live if c.phase in _SHEDDABLE), excess))
        for connection in victims:
            connection.shut()
            self._shed_count += 1

    def _watch(self) -> None:
        reported = time.monotonic()
        while self.alive:
            gevent.sleep(SHED_INTERVAL)
            self._shed()
            if time.monotonic() - reported >= REPORT_INTERVAL:
                reported = time.monotonic()
                if self._shed_count or self._timed_out:
                    self.log.warning(
                        "slow clients in the last %.0f s: %d connections shed, %d bodies timed"
                        " out (%d connections open, at most %d)",
                        REPORT_INTERVAL,
                        self._shed_count,
                        self._timed_out,
                        len(self._connections),
                        self.cfg.worker_connections,
                    )
                    self._shed_count = self._timed_out = 0

    @staticmethod
    def _linger(connection: _Connection) -> None:
        """Close after the answer without a reset: read what the client still sends, a while."""
        connection.enter(LINGER)
        sock, drained = connection.sock, 0
        with suppress(OSError), gevent.Timeout(LINGER_SECONDS, False):
            sock.shutdown(socket.SHUT_WR)
            while drained < LINGER_BYTES:
                data = sock.recv(65536)
                if not data:
                    break
                drained += len(data)


def guarded_worker(*, header_timeout: float, body_timeout: float) -> type[GuardedWorker]:
    """The worker class with these timeouts (made in gunicorn's master, inherited by its
    forked workers)."""
    return type(
        "GuardedWorker",
        (GuardedWorker,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )
