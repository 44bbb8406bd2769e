"""Downloading one image under the fetch policy (`remixq.assets.policy`).

Each hop (the URL, then every redirect, at most `MAX_REDIRECTS`) is checked by the policy, which
resolves its host once; the connection goes to the checked address, with the URL's host name in
the `Host` header and, over HTTPS, in the TLS handshake (SNI) and the certificate's check, so
TLS still proves whom we talk to. Redirects are never followed by the HTTP library: each
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
import time
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
        pool, response = _request(target, policy, deadline)
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
            return Fetched(body, url, response.headers.get("Content-Type"))
        finally:
            response.release_conn()
            pool.close()  # one connection per hop: nothing is kept between downloads
    raise Refused(f"more than {MAX_REDIRECTS} redirects")


def _request(
    target: Target, policy: FetchPolicy, deadline: float
) -> tuple[urllib3.HTTPConnectionPool, urllib3.BaseHTTPResponse]:
    """GET the target at each of its checked addresses in turn until one connects."""
    last: Exception | None = None
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        timeout = urllib3.Timeout(connect=min(policy.connect_timeout, remaining), read=remaining)
        pool: urllib3.HTTPConnectionPool
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                target.port,
                timeout=timeout,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=policy.ca_certs or certifi.where(),
                server_hostname=target.host,  # SNI: the name, not the address
                assert_hostname=target.host,  # the certificate must be the name's
            )
        else:
            pool = urllib3.HTTPConnectionPool(
                address, target.port, timeout=timeout, maxsize=1, retries=False
            )
        try:
            response = pool.urlopen(
                "GET",
                target.path,
                headers={
                    "Host": target.host_header,
                    "User-Agent": USER_AGENT,
                    "Accept": "image/*",
                    "Accept-Encoding": "identity",
                },
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
        except Urllib3Error as exc:
            pool.close()
            last = exc
            continue
        return pool, response
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
