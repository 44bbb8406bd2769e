"""The images of an Ideogram request: how a stored one is written (a data URI or an https URL)
and how its bytes are recognised (JPEG, PNG or WebP by their signature).

The schema checks an image with these at validation time, the client reads the same values
into file parts when it calls, so the two cannot disagree on what an image is.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from remixq.providers.ideogram import assumptions as A

_DATA_URI_RE = re.compile(
    r"data:(?P<mime>image/[A-Za-z0-9.+-]+);base64,(?P<payload>[A-Za-z0-9+/\s]*={0,2})",
    re.DOTALL,
)
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


@dataclass(frozen=True)
class ImageData:
    """An image's bytes and the format its signature says it is."""

    data: bytes
    format: str  # one of assumptions.IMAGE_FORMATS

    @property
    def mime_type(self) -> str:
        return A.MIME_TYPES[self.format]

    def filename(self, stem: str) -> str:
        return f"{stem}.{_EXTENSIONS[self.format]}"


def image_format(data: bytes) -> str | None:
    """JPEG, PNG or WEBP, read from the first bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def is_data_uri(value: str) -> bool:
    return value[:5].lower() == "data:"


def decoded_size(value: str) -> int | None:
    """The byte size a base64 data URI decodes to, without decoding it (None: not one)."""
    match = _DATA_URI_RE.fullmatch(value)
    if match is None:
        return None
    payload = "".join(match["payload"].split())
    return len(payload) * 3 // 4 - payload[-2:].count("=")


def decode_data_uri(value: str) -> bytes | None:
    """The bytes of a ``data:image/...;base64,`` URI; None when it is not one."""
    match = _DATA_URI_RE.fullmatch(value)
    if match is None:
        return None
    try:
        return base64.b64decode("".join(match["payload"].split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def data_uri(image: ImageData) -> str:
    """``image`` written as a data URI (how a producer stores a local file)."""
    return f"data:{image.mime_type};base64," + base64.b64encode(image.data).decode("ascii")


def is_image_url(value: str) -> bool:
    """An absolute https URL with a host and no whitespace (the schemes of IMAGE_URL_SCHEMES)."""
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return False
    return parts.scheme.lower() in A.IMAGE_URL_SCHEMES and bool(parts.hostname)


def is_image_reference(value: object) -> bool:
    """A value an image field may store: a base64 data URI or an https URL. Anything else
    in a campaign file is a local path, to be inlined by the producer."""
    if not isinstance(value, str) or not value:
        return False
    if is_data_uri(value):
        return _DATA_URI_RE.fullmatch(value) is not None
    return is_image_url(value)


def mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
