"""Slow and abusive HTTP clients for the receiver's tests, on raw sockets: many connections that
send the start of a request and then a byte now and then (a helper thread keeps them going and
opens a new one for each the server closes, as a determined attacker would), a single slow
connection timed until the server closes it, and requests written whole before any read."""

from __future__ import annotations

import resource
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path


def raise_open_files(wanted: int) -> None:
    """Raise this process's limit on open files (the receiver, started after, inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def slow_headers(path: str) -> bytes:
    """The start of a request whose headers never end (a header line per trickled byte)."""
    return f"POST {path} HTTP/1.1\r\nHost: receiver\r\nX-Slow: ".encode()


def slow_body(path: str, length: int) -> bytes:
    """Complete headers that declare a `length`-byte body, none of which is sent yet."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


@dataclass
class Attack:
    """`count` connections to 127.0.0.1:`port`, each sending `opening`, then one byte every
    `interval` seconds; with `reconnect`, each connection the server closes is replaced."""

    port: int
    count: int
    opening: bytes
    interval: float = 2.0
    reconnect: bool = True
    closed_by_server: int = 0  # connections the server closed (shed, timed out)
    opened: int = 0
    _sockets: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _open(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        with suppress(BlockingIOError):
            sock.connect(("127.0.0.1", self.port))
        try:
            # The connect completes in the kernel (the listen backlog) whether or not the server
            # has accepted it; the opening fits in the socket's buffer.
            _wait_writable(sock, 5)
            sock.send(self.opening)
        except OSError:
            sock.close()
            return None
        self.opened += 1
        return sock

    def start(self) -> None:
        raise_open_files(4 * self.count + 1024)
        for _ in range(self.count):
            sock = self._open()
            if sock is not None:
                self._sockets.append(sock)
        threading.Thread(target=self._run, name="slow-clients", daemon=True).start()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        for sock in self._sockets:
            selector.register(sock, selectors.EVENT_READ)
        next_byte = time.monotonic() + self.interval
        while not self._stop.is_set():
            ready = [key.fileobj for key, _ in selector.select(timeout=0.1)]
            with self._lock:
                if self._stop.is_set():
                    break
                closed = {s for s in ready if isinstance(s, socket.socket) and _closed(s)}
                if time.monotonic() >= next_byte:
                    next_byte += self.interval
                    for sock in self._sockets:
                        if sock not in closed:
                            try:
                                sock.send(b"x")
                            except OSError:
                                closed.add(sock)
                for sock in closed:
                    self.closed_by_server += 1
                    selector.unregister(sock)
                    self._sockets.remove(sock)
                    sock.close()
                    replacement = self._open() if self.reconnect else None
                    if replacement is not None:
                        self._sockets.append(replacement)
                        selector.register(replacement, selectors.EVENT_READ)
        selector.close()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


@contextmanager
def attack(
    port: int, count: int, opening: bytes, *, interval: float = 2.0, reconnect: bool = True
) -> Iterator[Attack]:
    running = Attack(port, count, opening, interval, reconnect)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def accept_queue(port: int) -> int:
    """Connections waiting to be accepted by the server listening on `port` (the kernel's
    backlog: for a listening socket, /proc/net/tcp's rx_queue)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, queues = fields[1], fields[3], fields[4]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
            return int(queues.split(":")[1], 16)
    raise LookupError(f"nothing listens on port {port}")


def _wait_writable(sock: socket.socket, timeout: float) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        if not selector.select(timeout):
            raise TimeoutError("connect")
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, "connect failed")


def _closed(sock: socket.socket) -> bool:
    """Whether a readable socket was closed by the peer (an answer, then EOF, counts too)."""
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True
    if not data:
        return True
    # An answer (a 408 or 503) before the close: the close follows; read it next round.
    return data.startswith(b"HTTP/1.1 ") and b"Connection: close" in data


@dataclass
class Closed:
    after: float  # seconds from the opening to the close
    answer: bytes  # what the server sent before closing


def time_until_closed(port: int, opening: bytes, *, trickle: float, timeout: float) -> Closed:
    """Send `opening` on a new connection, then a byte every `trickle` seconds, until the server
    closes it; how long that took and what it answered. Fails after `timeout`."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(opening)
        answer = b""
        next_byte = started + trickle
        while True:
            now = time.monotonic()
            if now - started > timeout:
                raise TimeoutError(f"the server kept the connection open over {timeout} s")
            sock.settimeout(max(0.01, min(next_byte, started + timeout) - now))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                with suppress(OSError):
                    sock.send(b"x")
                next_byte += trickle
                continue
            except ConnectionResetError:
                return Closed(time.monotonic() - started, answer)
            if not data:
                return Closed(time.monotonic() - started, answer)
            answer += data


def write_then_read(port: int, request: bytes, *, timeout: float = 30) -> bytes:
    """Write the whole request before reading anything (as simple senders do); the answer, or
    the OSError that writing or reading it met, re-raised."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while data := sock.recv(65536):
            answer += data
        return answer


def chunked(path: str, body: bytes, chunk: int = 65536) -> bytes:
    """A request with a chunked body (no Content-Length)."""
    parts = [
        f"POST {path} HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
    ]
    for start in range(0, len(body), chunk):
        piece = body[start : start + chunk]
        parts.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def with_length(path: str, body: bytes) -> bytes:
    """A request with a Content-Length."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])
