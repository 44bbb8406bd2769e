"""A small synchronous client for Ideogram's ``POST /v1/ideogram-v3/remix`` (page 004).

One call, ``remix``: the stored request (``jobs.request``, built by ``schemas.build_request``)
sent as a multipart form, its images as file parts (a data URI decoded, an https URL fetched
through the URL policy, bounded in size and time), the key in the ``Api-Key`` header. The call
blocks until the images exist; its answer is a ``RemixAnswer``.

Every failure is one class of ``remixq.providers.errors``, so the caller decides from the class:

    400 BadRequest · 401 Unauthorized · 403 Forbidden · 422 SafetyRejected (the body's "error")
    429 RateLimited (Retry-After) · 5xx ServerError · nothing sent ConnectionFailed
    sent, no answer (a read timeout, a connection cut mid-answer) AnswerLost: MAY be charged

The API has no idempotency key: the client never retries a call itself (the session's adapter
has no retries, redirects are not followed) and says which failures may have been charged. The
key goes into a per-request header, never into a log line, an error message or ``repr``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import requests
import urllib3.exceptions

from remixq.providers.errors import (
    AnswerLost,
    BadRequest,
    ConnectionFailed,
    Forbidden,
    NotFound,
    PaymentRequired,
    ProviderCallError,
    RateLimited,
    RequestTimeout,
    SafetyRejected,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    retry_after_seconds,
)
from remixq.providers.ideogram import assumptions as A
from remixq.providers.ideogram.images import (
    ImageData,
    decode_data_uri,
    image_format,
    is_data_uri,
    is_image_url,
    mib,
)
from remixq.security import redact
from remixq.url_policy import UrlPolicy

log = logging.getLogger(__name__)

PATH = "/v1/ideogram-v3/remix"
_CONNECT_TIMEOUT = 10.0  # seconds to open the connection: nothing is sent before it is open


@dataclass(frozen=True)
class RemixItem:
    """One generated image (``ImageObject``). An unsafe one has no URL."""

    url: str | None
    prompt: str
    resolution: str
    is_image_safe: bool
    seed: int
    style_type: str | None = None
    upscaled_resolution: str | None = None


@dataclass(frozen=True)
class RemixAnswer:
    """The API's 200 answer: when the request was created and its images."""

    created: str
    items: tuple[RemixItem, ...]


class IdeogramClient:
    """Ideogram's Remix API; one instance per process (it holds a connection pool)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float,
        session: requests.Session | None = None,
        urls: UrlPolicy | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be seconds > 0, got {timeout!r}")
        self._url = base_url.rstrip("/") + PATH
        self._api_key = api_key
        self._timeout = (min(_CONNECT_TIMEOUT, float(timeout)), float(timeout))
        self._urls = urls or UrlPolicy()
        self._owns_session = session is None
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"IdeogramClient(url={self._url!r}, key={'set' if self._api_key else 'none'})"

    def __enter__(self) -> IdeogramClient:
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

    def remix(self, request: Mapping[str, Any]) -> RemixAnswer:
        """Call the API once with the stored ``request``; its answer, or one of the errors of
        ``remixq.providers.errors`` (module docstring). Never retries."""
        fields, files = self._form(request)
        started = time.monotonic()
        try:
            response = self._session.post(
                self._url,
                data=fields,
                files=files,
                headers={"Api-Key": self._api_key, "Accept": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,  # a redirect is a misconfiguration, not something to follow
            )
        except requests.RequestException as exc:
            raise self._transport_error(exc) from None
        log.debug(
            "ideogram POST %s status=%s images=%s elapsed_ms=%d",
            PATH,
            response.status_code,
            request.get("num_images", 1),
            (time.monotonic() - started) * 1000,
        )
        if response.status_code == 200:
            return _answer(response)
        raise self._status_error(response)

    # --- the form ---------------------------------------------------------------------------

    def _form(
        self, request: Mapping[str, Any]
    ) -> tuple[list[tuple[str, str]], list[tuple[str, tuple[str, bytes, str]]]]:
        fields: list[tuple[str, str]] = []
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        for name, value in request.items():
            if name in A.FILE_FIELDS:
                values = value if isinstance(value, list) else [value]
                for index, item in enumerate(values):
                    where = name if not isinstance(value, list) else f"{name}[{index}]"
                    image = self._image(where, item)
                    files.append(
                        (name, (image.filename(f"{name}-{index}"), image.data, image.mime_type))
                    )
            elif name in A.LIST_FORM_FIELDS and isinstance(value, list):
                fields.extend((name, str(item)) for item in value)
            elif name in A.JSON_FORM_FIELDS:
                fields.append((name, json.dumps(value, separators=(",", ":"))))
            elif isinstance(value, bool):
                fields.append((name, "true" if value else "false"))
            else:
                fields.append((name, str(value)))
        return fields, files

    def _image(self, where: str, value: object) -> ImageData:
        """The bytes of one stored image; BadRequest (naming the field) when they are not an
        image the API takes, ConnectionFailed when its host could not be reached (nothing was
        sent to Ideogram yet, so trying again later is safe)."""
        if not isinstance(value, str):
            raise BadRequest(f"{where}: not an image reference")
        if is_data_uri(value):
            data = decode_data_uri(value)
            if data is None:
                raise BadRequest(f"{where}: not a base64 data URI")
        elif is_image_url(value):
            data = self._fetch(where, value)
        else:
            raise BadRequest(f"{where}: neither a data URI nor an https URL")
        kind = image_format(data)
        if kind is None:
            raise BadRequest(f"{where}: not a JPEG, PNG or WebP image")
        if len(data) > A.IMAGE_MAX_BYTES:
            raise BadRequest(f"{where}: {mib(len(data))}, over {mib(A.IMAGE_MAX_BYTES)}")
        return ImageData(data, kind)

    def _fetch(self, where: str, url: str) -> bytes:
        refusal = self._urls.refusal(url)
        shown = redact(url)
        if refusal is not None:
            raise BadRequest(f"{where}: {shown} is refused: {refusal}")
        try:
            with self._session.get(
                url, stream=True, timeout=A.FETCH_TIMEOUT, allow_redirects=False
            ) as response:
                if response.status_code >= 500:
                    raise ConnectionFailed(f"{where}: {shown} answered HTTP {response.status_code}")
                if response.status_code != 200:
                    raise BadRequest(f"{where}: {shown} answered HTTP {response.status_code}")
                return _bounded(response.iter_content(64 * 1024), where)
        except requests.RequestException as exc:
            raise ConnectionFailed(
                f"{where}: fetching {shown} failed: {type(exc).__name__}"
            ) from None

    # --- answers ----------------------------------------------------------------------------

    def _transport_error(self, exc: requests.RequestException) -> ProviderCallError:
        """Nothing sent (the connection never opened) is ConnectionFailed; anything after the
        request went out is AnswerLost: the provider may have done, and charged, the work."""
        if isinstance(exc, requests.ConnectTimeout) or _never_connected(exc):
            return ConnectionFailed(f"could not connect to {self._url}: {type(exc).__name__}")
        if isinstance(exc, requests.Timeout):
            return AnswerLost(
                f"no answer from {self._url} within {self._timeout[1]:g}s after the request was "
                "sent; the call may have been charged"
            )
        return AnswerLost(
            f"the connection to {self._url} broke after the request was sent "
            f"({type(exc).__name__}); the call may have been charged"
        )

    def _status_error(self, response: requests.Response) -> ProviderCallError:
        status = response.status_code
        said = redact(_said(response), (self._api_key,))
        reason = f"HTTP {status} {response.reason or ''}".rstrip()
        message = f"{reason}: {said}" if said else reason
        if status == 422:
            # The text the provider gave, as is: it is what the job fails with.
            return SafetyRejected(
                said or "the prompt or an image failed the safety check", status=status
            )
        retry_after = _retry_after(response.headers.get("Retry-After"))
        if status == 429:
            return RateLimited(message, status=status, retry_after=retry_after)
        if status == 408:
            return RequestTimeout(message, status=status, retry_after=retry_after)
        if 500 <= status < 600:
            return ServerError(message, status=status, retry_after=retry_after)
        permanent = {
            400: BadRequest,
            401: Unauthorized,
            402: PaymentRequired,
            403: Forbidden,
            404: NotFound,
        }.get(status, UnexpectedResponse)
        return permanent(message, status=status)


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the connection was never opened (refused, no route, a name not resolved):
    urllib3 reports these as a NewConnectionError inside the MaxRetryError requests wraps."""
    cause: object = exc.args[0] if exc.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        cause = cause.reason
    return isinstance(
        cause, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def _bounded(chunks: Iterator[bytes], where: str) -> bytes:
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > A.IMAGE_MAX_BYTES:
            raise BadRequest(f"{where}: larger than {mib(A.IMAGE_MAX_BYTES)}")
    return bytes(data)


def _said(response: requests.Response) -> str:
    """What an error body says: its "error" or "message" string, else its text, shortened."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        for key in ("error", "message", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])[: A.ERROR_TEXT_CHARS]
    text = " ".join(response.text.split()) if response.content else ""
    return text[: A.ERROR_TEXT_CHARS]


def _answer(response: requests.Response) -> RemixAnswer:
    """The 200 body read as ``ImageGenerationResponseV3``; UnexpectedResponse when it is not."""
    try:
        body = response.json()
    except ValueError:
        raise UnexpectedResponse("HTTP 200: body is not JSON", status=200) from None
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
        raise UnexpectedResponse("HTTP 200: 'data' is not a list of objects", status=200)
    created = body.get("created")
    return RemixAnswer(
        created=created if isinstance(created, str) else "",
        items=tuple(_item(item, index) for index, item in enumerate(data)),
    )


def _item(item: Mapping[str, Any], index: int) -> RemixItem:
    def text(name: str, *, required: bool) -> str | None:
        value = item.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise UnexpectedResponse(f"HTTP 200: data[{index}].{name} is not a string", status=200)
        return value

    safe, seed = item.get("is_image_safe"), item.get("seed")
    if not isinstance(safe, bool):
        raise UnexpectedResponse(
            f"HTTP 200: data[{index}].is_image_safe is not a boolean", status=200
        )
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UnexpectedResponse(f"HTTP 200: data[{index}].seed is not an integer", status=200)
    url = text("url", required=False)
    return RemixItem(
        url=(url or None) if safe else None,  # "If false, the url field will be empty."
        prompt=text("prompt", required=True) or "",
        resolution=text("resolution", required=True) or "",
        is_image_safe=safe,
        seed=seed,
        style_type=text("style_type", required=False),
        upscaled_resolution=text("upscaled_resolution", required=False),
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header, if any (and honoured: `assumptions`)."""
    return retry_after_seconds(value) if A.HONOUR_RETRY_AFTER else None
