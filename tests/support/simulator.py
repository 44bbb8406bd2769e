"""Test helpers: task builders, a deadline poll, a real webhook receiver, a live simulator."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from simulator.config import SimulatorConfig
from simulator.engine import Simulator
from simulator.extension import EXTENSION_KEY
from simulator.server import build_server, shutdown

AUTH = {"Authorization": "Bearer test-key"}

T = TypeVar("T")

_BASE_TASKS: dict[str, dict[str, Any]] = {
    "ideogram:1@2": {
        "positivePrompt": "A retro cereal box",
        "width": 1024,
        "height": 768,
        "inputs": {"referenceImages": ["https://example.com/in.jpg"]},
    },
    "ideogram:4@2": {
        "positivePrompt": "A seaside ticket booth",
        "width": 1344,
        "height": 768,
        "inputs": {"referenceImages": ["https://example.com/in.jpg"]},
    },
    "ideogram:4@remix": {
        "positivePrompt": "A neon alley, rain, reflections",
        "width": 2048,
        "height": 2048,
        "inputs": {"seedImage": "https://example.com/in.jpg"},
    },
}


def task(model: str = "ideogram:1@2", **overrides: Any) -> dict[str, Any]:
    """A valid imageInference task for ``model`` with a fresh taskUUID, then ``overrides``."""
    body: dict[str, Any] = {
        "taskType": "imageInference",
        "taskUUID": str(uuid.uuid4()),
        "model": model,
        **json.loads(json.dumps(_BASE_TASKS[model])),
    }
    body.update(overrides)
    return body


def get_response(task_uuid: str) -> dict[str, Any]:
    return {"taskType": "getResponse", "taskUUID": task_uuid}


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() on arrival
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class _Served:
    """A bound WSGI server on 127.0.0.1, served from a daemon thread once started."""

    def __init__(self, server: BaseWSGIServer) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> Self:
        self._thread.start()
        return self

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


class Receiver(_Served):
    """A real HTTP server recording every request; answers ``statuses`` in turn, then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: deque[int] = deque()
        self.delay_s = 0.0  # answer every request this late (for timeout tests)
        self._lock = threading.Lock()
        super().__init__(
            make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Quiet)
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "/hook") -> str:
        return self.origin + path

    def fail_next(self, statuses: Iterable[int]) -> None:
        with self._lock:
            self.statuses.extend(statuses)

    def requests(self, method: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if method is None or r.method == method]

    def wait(self, count: int, timeout: float = 5.0, method: str = "POST") -> list[Received]:
        def enough() -> list[Received] | None:
            got = self.requests(method)
            return got if len(got) >= count else None

        return wait_for(enough, timeout)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.received.append(
                Received(
                    time.monotonic(), request.method, request.path, dict(request.headers), body
                )
            )
            status = self.statuses.popleft() if self.statuses else 200
        if self.delay_s:
            time.sleep(self.delay_s)
        return Response("ok", status=status)(environ, start_response)


class LiveSimulator(_Served):
    """The simulator served for real on a free port (for timeouts and connection behaviour)."""

    def __init__(self, config: SimulatorConfig) -> None:
        super().__init__(build_server(config, "127.0.0.1", 0))

    def stop(self) -> None:
        shutdown(self.server)

    @property
    def url(self) -> str:
        return self.origin


MakeClient = Callable[..., FlaskClient]  # the `make_client` fixture: a test client of a fresh app


def simulator_of(client: FlaskClient) -> Simulator:
    """The simulator behind a Flask test client."""
    simulator = client.application.extensions[EXTENSION_KEY]
    assert isinstance(simulator, Simulator)
    return simulator
