"""Checks of single values: image references, UUID v4 task ids, http(s) URLs, strength steps.

The ``is_*`` predicates answer yes or no for callers outside pydantic (a campaign's image
column, the client's webhook URL); the ``check_*`` functions wrap them as pydantic
``AfterValidator``s for the request models. A URL the provider will be told to contact
(``uploadEndpoint``, an image reference) is also held to the caller's ``UrlPolicy``, passed in
the validation context by ``parse_request``.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlsplit

from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

from remixq.providers.runware import assumptions as A
from remixq.url_policy import UrlPolicy

_UUID_RE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
_UUID4_RE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.IGNORECASE
)
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_DATA_URI_RE = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(?P<payload>.*)", re.DOTALL)

IMAGE_REFERENCE_TEXT = (
    "an image reference: a UUID, an http(s) URL, a data:image/...;base64 URI "
    "or base64-encoded JPEG/PNG/WebP data"
)


def is_http_url(value: str) -> bool:
    """An absolute http or https URL with a host and no whitespace."""
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_base64(text: str) -> bool:
    return len(text) % 4 == 0 and _BASE64_RE.fullmatch(text) is not None


def _looks_like_image(b64: str) -> bool:
    # 16 base64 characters decode to the 12 bytes the longest signature (WebP) needs.
    try:
        head = base64.b64decode(b64[:16], validate=True)
    except (binascii.Error, ValueError):
        return False
    signatures = A.RAW_BASE64_IMAGE_SIGNATURES
    if head.startswith(signatures["WEBP"]):
        return head[8:12] == b"WEBP"
    return head.startswith((signatures["JPEG"], signatures["PNG"]))


def is_image_reference(value: str) -> bool:
    """True for a UUID, an http(s) URL, a ``data:image/...;base64,`` URI or base64 image data.

    The exact rules are in ``assumptions.RAW_BASE64_IMAGE_SIGNATURES``.
    """
    if not isinstance(value, str) or not value:
        return False
    if _UUID_RE.fullmatch(value):
        return True
    if value[:5].lower() == "data:":
        match = _DATA_URI_RE.fullmatch(value)
        return match is not None and _is_base64(match["payload"])
    if "://" in value:
        return is_http_url(value)
    return _is_base64(value) and _looks_like_image(value)


def is_uuid4(value: str) -> bool:
    return isinstance(value, str) and _UUID4_RE.fullmatch(value) is not None


# The error type under which a URL refused by the policy reaches ``refusals``, its message being
# the sentence of what is allowed.
URL_HOST_ERROR = "url_host"


def _check_url_host(value: str, info: ValidationInfo) -> None:
    policy = (info.context or {}).get("urls")
    if isinstance(policy, UrlPolicy):
        reason = policy.refusal(value)
        if reason is not None:
            raise PydanticCustomError(URL_HOST_ERROR, "{reason}", {"reason": reason})


def check_image_reference(value: str, info: ValidationInfo) -> str:
    if not is_image_reference(value):
        raise ValueError("not an image reference")
    if "://" in value:
        _check_url_host(value, info)
    return value


def check_uuid4(value: str) -> str:
    """A UUID v4 in its canonical, lowercase spelling: the job row, the claim, the client and the
    webhooks then agree on one string (two spellings of one taskUUID are one taskUUID)."""
    if not is_uuid4(value):
        raise ValueError("not a UUID v4")
    return value.lower()


def check_http_url(value: str, info: ValidationInfo) -> str:
    if not is_http_url(value):
        raise ValueError("not an http(s) URL")
    _check_url_host(value, info)
    return value


def check_strength_step(value: float) -> float:
    hundredths = value * 100
    if abs(hundredths - round(hundredths)) > A.STRENGTH_STEP_TOLERANCE:
        raise ValueError("not a multiple of 0.01")
    return value
