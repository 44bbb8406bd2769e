"""A small synchronous REST client for Runware's task API (``POST /v1``, JSON arrays of tasks).

Two calls: ``submit`` sends ``imageInference`` tasks (built by ``schemas.build_task``, so
``deliveryMethod`` is ``async`` and the answer is an acknowledgement), ``get_response`` polls a
task's generations; the items of both answers are read by ``results``, like every provider item.
Every call has explicit connect/read timeouts; every failure is one of the classes in ``errors``
so a caller can retry transient ones and fail the job on permanent ones. Retrying is the
caller's business (the worker owns the retry policy); resubmitting a taskUUID is safe because the
provider answers ``conflictTaskUUID`` (reported as an ``Ack`` with ``already_submitted=True``).

The transport is a ``requests.Session``: tests mount a fake adapter on it, production passes
nothing and gets a private session. The API key goes into a per-request header (never into the
session, a log line, an exception message or ``repr``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import requests

from remixq.db import json_dumps
from remixq.providers.errors import retry_after_seconds
from remixq.providers.runware import assumptions as A
from remixq.providers.runware.errors import (
    ConnectionFailed,
    ProviderError,
    RequestTimeout,
    RunwareError,
    Unauthorized,
    UnexpectedResponse,
    for_status,
)
from remixq.providers.runware.results import (
    InvalidPayload,
    ItemKind,
    PollResult,
    kind_of,
    parse_json,
    read_poll,
    task_key,
)
from remixq.providers.runware.schemas import is_http_url

log = logging.getLogger(__name__)

AuthMode = Literal["header", "task"]


@dataclass(frozen=True)
class Ack:
    """The provider accepted the task (or already had it: ``already_submitted``)."""

    task_uuid: str
    already_submitted: bool = False


def _session_for(api_url: str) -> requests.Session:
    """A session that reads the proxy and CA-bundle settings of the environment once, here,
    instead of on every request (a measured cost on the submission path, docs/benchmarks.md)."""
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(api_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session


@dataclass(frozen=True)
class _Answer:
    status: int
    data: list[dict[str, Any]]
    errors: list[ProviderError]


class RunwareClient:
    """Runware REST client; one instance per process (it holds a connection pool)."""

    def __init__(
        self,
        api_url: str,
        api_key: str | None,
        *,
        timeout: tuple[float, float] = (3.05, 30.0),
        session: requests.Session | None = None,
        auth_mode: AuthMode = "header",
    ) -> None:
        if not is_http_url(api_url):
            raise ValueError(f"api_url must be an http(s) URL, got {api_url!r}")
        if auth_mode not in ("header", "task"):
            raise ValueError(f"auth_mode must be 'header' or 'task', got {auth_mode!r}")
        if len(timeout) != 2 or not all(t > 0 for t in timeout):
            raise ValueError(f"timeout must be (connect, read) seconds > 0, got {timeout!r}")
        self._api_url = api_url
        self._api_key = api_key or None
        self._timeout = (float(timeout[0]), float(timeout[1]))
        self._auth_mode: AuthMode = auth_mode
        self._owns_session = session is None
        if session is None:
            session = _session_for(api_url)
        self._session = session

    @property
    def _secrets(self) -> tuple[str, ...]:
        """What a provider's error message must not show (it might echo the key)."""
        return (self._api_key,) if self._api_key else ()

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"RunwareClient(api_url={self._api_url!r}, auth_mode={self._auth_mode!r}, key={key})"

    def __enter__(self) -> RunwareClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the session if this client created it (an injected one belongs to the caller)."""
        if self._owns_session:
            self._session.close()

    # --- public calls -------------------------------------------------------------------------

    def submit(self, tasks: Sequence[Mapping[str, Any]]) -> dict[str, Ack | ProviderError]:
        """POST the tasks as one array; return each task's outcome keyed by its taskUUID.

        A task absent from the result got no answer at all; resubmitting it is safe. Failures of
        the request as a whole raise (see ``errors``), including a 2xx carrying errors that name
        no task of this request: the accepted tasks are then reported as already submitted on
        the retry.
        """
        uuids = [task.get("taskUUID") for task in tasks]
        distinct = {task_key(u) for u in uuids}
        if not all(isinstance(u, str) and u for u in uuids) or len(distinct) != len(uuids):
            raise ValueError("every task needs its own taskUUID")
        if not tasks:
            return {}
        # UUIDs compare case-insensitively (RFC 4122); outcomes keep the caller's spelling.
        ours = {task_key(u): str(u) for u in uuids}
        answer = self._post([dict(task) for task in tasks], set(ours))
        outcome: dict[str, Ack | ProviderError] = {}
        for item in answer.data:
            task_uuid = ours.get(task_key(item.get("taskUUID")))
            if task_uuid is not None:
                if kind_of(item) is ItemKind.ERROR:
                    outcome[task_uuid] = ProviderError.from_dict(item, secrets=self._secrets)
                else:
                    outcome[task_uuid] = Ack(task_uuid)
        stray: list[ProviderError] = []
        for error in answer.errors:
            task_uuid = ours.get(task_key(error.task_uuid))
            if task_uuid is None:
                stray.append(error)
            elif error.code == A.CONFLICT_TASK_UUID_CODE:
                outcome[task_uuid] = Ack(task_uuid, already_submitted=True)
            else:
                outcome[task_uuid] = error  # an error outranks an ack for the same task
        if stray and A.UNTAGGED_2XX_ERRORS_ARE_UNEXPECTED:
            raise UnexpectedResponse(
                f"HTTP {answer.status}: errors not tied to a task of this request: "
                + _summary(stray),
                status=answer.status,
                errors=stray,
            )
        return outcome

    def get_response(self, task_uuid: str) -> PollResult:
        """Poll ``getResponse`` for one task: its successes, failures and pending count, its
        items sorted as every other provider item is (``results``)."""
        answer = self._post(
            [{"taskType": "getResponse", "taskUUID": task_uuid}], {task_key(task_uuid)}
        )
        return read_poll(task_uuid, answer.data, answer.errors)

    # --- transport ----------------------------------------------------------------------------

    def _post(self, tasks: list[dict[str, Any]], expected: set[str]) -> _Answer:
        """POST one array; ``expected`` holds the ``task_key`` of every task in it."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        payload: list[dict[str, Any]] = tasks
        if self._api_key and self._auth_mode == "header":
            headers["Authorization"] = f"Bearer {self._api_key}"
        elif self._api_key:
            payload = [{"taskType": "authentication", "apiKey": self._api_key}, *tasks]
        body = json_dumps(payload)  # exact decimals (a request read back from its JSON column)
        started = time.monotonic()
        try:
            response = self._session.post(
                self._api_url,
                data=body.encode(),
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,  # a redirect is a misconfiguration, not something to follow
            )
        except requests.ConnectTimeout as exc:
            raise ConnectionFailed(f"could not connect to {self._api_url} in time") from exc
        except requests.Timeout as exc:
            raise RequestTimeout(f"no answer from {self._api_url} in {self._timeout[1]}s") from exc
        except requests.RequestException as exc:
            raise ConnectionFailed(
                f"connection to {self._api_url} failed: {type(exc).__name__}"
            ) from exc
        status = response.status_code
        log.debug(
            "runware POST tasks=%s status=%s elapsed_ms=%d",
            ",".join(sorted(expected)),
            status,
            (time.monotonic() - started) * 1000,
        )
        envelope = _json_object(response)
        errors = _errors_of(envelope, self._secrets)
        if any(e.task_type == "authentication" for e in errors) and status < 500:
            raise Unauthorized(f"HTTP {status}: {_summary(errors)}", status=status, errors=errors)
        if 200 <= status < 300:
            if envelope is None:
                raise UnexpectedResponse(f"HTTP {status}: body is not a JSON object", status=status)
            return _Answer(status, _data_of(envelope, status), errors)
        per_task = errors and all(task_key(e.task_uuid) in expected for e in errors)
        if status == 400 and A.PER_TASK_400 and per_task and envelope is not None:
            return _Answer(status, _data_of(envelope, status), errors)
        raise _status_error(status, response, errors)


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        parsed = parse_json(response.content)  # the number rules of every provider payload
    except InvalidPayload:
        return None
    return parsed if isinstance(parsed, dict) else None


def _errors_of(envelope: Mapping[str, Any] | None, secrets: Sequence[str]) -> list[ProviderError]:
    if envelope is None:
        return []
    # "errors" is the documented key; an older page says "error", runware-python accepts both.
    raw = envelope.get("errors", envelope.get("error"))
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    return [
        ProviderError.from_dict(item, secrets=secrets) for item in raw if isinstance(item, Mapping)
    ]


def _data_of(envelope: Mapping[str, Any], status: int) -> list[dict[str, Any]]:
    data = envelope.get("data", [])
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise UnexpectedResponse(f"HTTP {status}: 'data' is not a list of objects", status=status)
    return [item for item in data if item.get("taskType") != "authentication"]


def _summary(errors: Sequence[ProviderError], limit: int = 3) -> str:
    shown = "; ".join(str(e) for e in errors[:limit])
    more = len(errors) - limit
    return shown + (f" (+{more} more)" if more > 0 else "")


def _status_error(
    status: int, response: requests.Response, errors: list[ProviderError]
) -> RunwareError:
    reason = f"HTTP {status} {response.reason or ''}".rstrip()
    message = f"{reason}: {_summary(errors)}" if errors else reason
    retry_after = _retry_after(response.headers.get("Retry-After"))
    return for_status(status, message, errors, retry_after=retry_after)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header, if any (and honoured: `assumptions`)."""
    return retry_after_seconds(value) if A.HONOUR_RETRY_AFTER else None
