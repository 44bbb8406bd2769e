"""A fake transport for `RunwareClient`, shipped beside it (as httpx ships its MockTransport), so
that tests of the client, and of whatever uses it, run the client's real request and response
handling without a network and without mocking our own code.

`FakeTransport` is a real `requests` adapter: mounted on a session handed to
`RunwareClient(session=...)`, it records each prepared request (and the timeout it was sent
with) and answers from a script of `reply(...)` answers or exceptions to raise, in order::

    transport = FakeTransport(reply(200, {"data": [...]}), requests.ConnectionError("down"))
    client = RunwareClient(api_url, api_key, session=transport.session())
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

# One scripted answer: the status code, the body's bytes and the headers.
Answer = tuple[int, bytes, dict[str, str]]


def reply(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Answer:
    """One scripted answer; dicts and lists become JSON, str/bytes are sent as they are."""
    if isinstance(body, bytes):
        content = body
    elif isinstance(body, str):
        content = body.encode()
    else:
        content = json.dumps(body if body is not None else {}).encode()
    return status, content, {"Content-Type": "application/json", **(headers or {})}


class FakeTransport(BaseAdapter):
    """A requests adapter that records requests and answers from a script (an exception in the
    script is raised instead of answering, as a transport error would be)."""

    def __init__(self, *script: Answer | BaseException) -> None:
        super().__init__()
        self.script = list(script)
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []
        self.closed = False

    def send(  # requests' adapter signature: its arguments come by keyword
        self,
        request: requests.PreparedRequest,
        stream: bool = False,  # noqa: ARG002
        timeout: Any = None,
        verify: Any = True,  # noqa: ARG002
        cert: Any = None,  # noqa: ARG002
        proxies: Any = None,  # noqa: ARG002
    ) -> requests.Response:
        self.sent.append(request)
        self.timeouts.append(timeout)
        if not self.script:
            raise AssertionError(f"no scripted answer left for {request.method} {request.url}")
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        status, content, headers = step
        response = requests.Response()
        response.status_code = status
        response.reason = (
            HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        )
        response.headers = CaseInsensitiveDict(headers)
        response.raw = io.BytesIO(content)
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        self.closed = True

    def body(self, index: int = -1) -> Any:
        """The JSON body of the `index`th request sent (the last by default)."""
        raw = self.sent[index].body
        return json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))

    def session(self) -> requests.Session:
        """A new session that sends every http(s) request through this transport."""
        session = requests.Session()
        session.mount("https://", self)
        session.mount("http://", self)
        return session
