"""A real HTTP server on 127.0.0.1 standing in for an image host: each path answers a script of
replies in turn (the last one repeats), and every request is recorded, so that a test can show
what was fetched and that an internal address was never asked.

A reply can be a status with a body, a redirect, a body cut short (the declared Content-Length,
fewer bytes, then the connection closed), a chunked body without a Content-Length, or no answer
at all (the connection closed). It speaks HTTP/1.1 with keep-alive, and records which connection
(the client's port) each request came on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    send_bytes: int | None = None  # send only this many bytes of the body, then close
    chunked: bool = False  # no Content-Length: Transfer-Encoding chunked
    hang_up: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds before answering (a slow download)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, b"", {"Location": location})


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    peer: tuple[str, int]  # the client's address and port: one per TCP connection


class ImageHost:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:
                host._serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def route(self, path: str, *replies: Reply) -> str:
        """Answer `path` with `replies` in turn (the last repeats); returns its URL."""
        with self._lock:
            self._scripts[path] = list(replies)
        return self.url(path)

    def requests(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if path is None or s.path == path]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.seen.append(
                Seen(handler.command, handler.path, dict(handler.headers), handler.client_address)
            )
            script = self._scripts.get(handler.path.split("?", 1)[0])
            if script is None:
                reply = Reply(404, b"not found")
            else:
                reply = script.pop(0) if len(script) > 1 else script[0]
        if reply.delay:
            time.sleep(reply.delay)  # the host's own slowness, not a test's wait
        if reply.hang_up:
            handler.close_connection = True
            return
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.chunked:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for start in range(0, len(reply.body), 4096):
                piece = reply.body[start : start + 4096]
                handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            handler.wfile.write(b"0\r\n\r\n")
            return
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        if reply.send_bytes is None:
            handler.wfile.write(reply.body)
            return
        handler.wfile.write(reply.body[: reply.send_bytes])
        handler.wfile.flush()
        handler.close_connection = True

    def start(self) -> ImageHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def image_host() -> Iterator[ImageHost]:
    host = ImageHost().start()
    try:
        yield host
    finally:
        host.stop()
