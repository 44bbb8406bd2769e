"""Downloading one image under the fetch policy (`remixq.assets.policy`).

Each hop (the URL, then every redirect, at most `MAX_REDIRECTS`) is checked by the policy, which
resolves its host once; the connection goes to the checked address, with the URL's host name in
the `Host` header and, over HTTPS, in the TLS handshake (SNI) and the certificate's check, so
TLS still proves whom we talk to; a thread keeps its connection to a checked address for the
next download from it (`_Connection`). Redirects are never followed by the HTTP library: each
`Location` is a new URL, checked again. The body is read in chunks up to the size cap (a
declared `Content-Length` above it is refused before any of the body is read), within the total
timeout; a body shorter than its declared length is an error, and no content encoding is asked
for or decoded (a small compressed body cannot expand in memory).

The outcomes: the bytes (`Fetched`), `Refused` (the policy: the asset ends `refused`), `Gone`
(an answer that retrying cannot change: the asset ends `failed`) or `Unavailable` (anything that
a later try may not meet: retried with backoff while the link lives).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urljoin

import certifi
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from remixq.assets.policy import MAX_REDIRECTS, FetchPolicy, Refused, Target

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Answers that say this link will not work however often it is asked (404 may be a CDN that
# has not caught up yet, so it is retried while the link lives, like 408, 425, 429 and 5xx).
_PERMANENT = frozenset({400, 401, 403, 405, 406, 410, 411, 414, 451})
_CHUNK = 64 * 1024
USER_AGENT = "remixq-assets/1"


class Unavailable(Exception):
    """A failure a later try may not meet (a 5xx, a timeout, a truncated or non-image body)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Gone(Exception):
    """An answer retrying cannot change (e.g. 403, 410): the asset ends `failed`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    body: bytes
    url: str  # the URL that answered (after redirects)
    content_type: str | None  # as the server declared it (the stored type is the decoded one)


def fetch(url: str, policy: FetchPolicy) -> Fetched:
    """The bytes `url` answers with, within `policy`; Refused, Gone or Unavailable otherwise."""
    deadline = time.monotonic() + policy.total_timeout
    for _ in range(MAX_REDIRECTS + 1):
        target = policy.check(url)
        connection, response = _request(target, policy, deadline)
        whole = False
        try:
            if response.status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise Unavailable(f"HTTP {response.status} without a Location")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                reason = f"HTTP {response.status} from {target.host}"
                raise (Gone if response.status in _PERMANENT else Unavailable)(reason)
            body = _read(response, target, policy, deadline)
            whole = True
            return Fetched(body, url, response.headers.get("Content-Type"))
        finally:
            if whole and _kept_alive(response):  # the connection may serve the next one
                response.release_conn()
            else:
                connection.discard()
    raise Refused(f"more than {MAX_REDIRECTS} redirects")


def _kept_alive(response: urllib3.BaseHTTPResponse) -> bool:
    """Whether the host keeps the connection open after this answer (HTTP/1.1 without
    `Connection: close`)."""
    closing = "close" in response.headers.get("Connection", "").lower()
    return getattr(response, "version", 11) >= 11 and not closing


class _Connection:
    """A kept connection to one checked address (a pool of one), per thread: a download reuses
    the connection of the previous one to the same address, host name and scheme, so that a
    campaign's copies do not pay a TCP and TLS handshake each. Each URL is still checked by the
    policy, and a connection is only ever reused for the address that check returned."""

    _local = threading.local()
    KEPT = 8  # connections kept per thread, the least recently used closed first

    def __init__(self, key: tuple[object, ...], pool: urllib3.HTTPConnectionPool, reused: bool):
        self.key, self.pool, self.reused = key, pool, reused

    @classmethod
    def to(cls, target: Target, address: str, policy: FetchPolicy) -> _Connection:
        kept: OrderedDict[tuple[object, ...], urllib3.HTTPConnectionPool]
        kept = cls._local.__dict__.setdefault("kept", OrderedDict())
        key = (target.scheme, address, target.port, target.host, policy.ca_certs)
        pool = kept.get(key)
        if pool is not None:
            kept.move_to_end(key)
            return cls(key, pool, reused=True)
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                target.port,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=policy.ca_certs or certifi.where(),
                server_hostname=target.host,  # SNI: the name, not the address
                assert_hostname=target.host,  # the certificate must be the name's
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, target.port, maxsize=1, retries=False)
        kept[key] = pool
        while len(kept) > cls.KEPT:
            kept.popitem(last=False)[1].close()
        return cls(key, pool, reused=False)

    def discard(self) -> None:
        """Close it and keep it no more (after a failure, or a body not read to its end)."""
        kept = self._local.__dict__.get("kept", {})
        if kept.get(self.key) is self.pool:
            del kept[self.key]
        self.pool.close()


def _request(
    target: Target, policy: FetchPolicy, deadline: float
) -> tuple[_Connection, urllib3.BaseHTTPResponse]:
    """GET the target at each of its checked addresses in turn until one answers (a kept
    connection that fails is tried once more on a new one: the server may have closed it)."""
    last: Exception | None = None
    for address in target.addresses:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Unavailable(f"no answer from {target.host}: {_words(last)}")
            connection = _Connection.to(target, address, policy)
            timeout = urllib3.Timeout(
                connect=min(policy.connect_timeout, remaining), read=remaining
            )
            try:
                response = connection.pool.urlopen(
                    "GET",
                    target.path,
                    headers={
                        "Host": target.host_header,
                        "User-Agent": USER_AGENT,
                        "Accept": "image/*",
                        "Accept-Encoding": "identity",
                    },
                    timeout=timeout,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    decode_content=False,
                    assert_same_host=False,
                )
            except Urllib3Error as exc:
                connection.discard()
                last = exc
                if connection.reused:
                    continue
                break
            return connection, response
    raise Unavailable(f"no answer from {target.host}: {_words(last)}")


def _read(
    response: urllib3.BaseHTTPResponse, target: Target, policy: FetchPolicy, deadline: float
) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
        raise Refused(
            f"the image is {int(declared)} bytes; at most {policy.max_bytes} are fetched"
            " (REMIXQ_IMAGE_MAX_BYTES)"
        )
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"the download from {target.host} took longer than {policy.total_timeout:g} s"
                )
            chunk = response.read(_CHUNK, decode_content=False)
            if not chunk:
                break
            size += len(chunk)
            if size > policy.max_bytes:
                raise Refused(
                    f"the image is over {policy.max_bytes} bytes, the most fetched"
                    " (REMIXQ_IMAGE_MAX_BYTES)"
                )
            chunks.append(chunk)
    except Urllib3Error as exc:
        raise Unavailable(f"the body from {target.host} was cut short: {_words(exc)}") from None
    return b"".join(chunks)


_QUOTED_URL = re.compile(r"(url: )\S+")


def _words(exc: Exception | None) -> str:
    """An exception's class and first words, without the URL a library may quote (its path or
    query may be a credential: a reason is stored and logged)."""
    if exc is None:
        return "no address to connect to"
    text = _QUOTED_URL.sub(r"\1[path]", str(exc).split("(Caused by", 1)[0]).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
