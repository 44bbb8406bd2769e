"""Verifying a body before it is stored: it must decode whole, with Pillow, as an image of the
format the request asked for (`outputFormat`: JPG, PNG or WEBP); what it is (format, width,
height, content type) is read from the decoding, never from what a server declared."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from remixq.local_images import ImageRefused, decode

# A request's outputFormat (default JPG, the model pages') -> the format its bytes must decode as.
OUTPUT_FORMATS = {"JPG": "JPEG", "PNG": "PNG", "WEBP": "WEBP"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class NotAnImage(Exception):
    """A body that is not a whole image of the expected format (truncated, corrupt, another
    format or no image at all): not stored."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    """Bytes that decoded as what was asked, and what they are."""

    data: bytes
    sha256: str
    format: str  # JPEG | PNG | WEBP
    content_type: str
    width: int
    height: int

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def expected_format(output_format: object) -> str:
    """The format a request's `outputFormat` asks for (JPEG when absent or unknown)."""
    return OUTPUT_FORMATS.get(str(output_format or "JPG").upper(), "JPEG")


def verify(data: bytes, expected: str) -> Verified:
    """`data` as a `Verified` image of format `expected` (empty: any of PNG, JPEG and WebP, for
    a provider whose requests name none); NotAnImage saying why otherwise."""
    if not data:
        raise NotAnImage("the body is empty")
    try:
        decoded = decode(data)
    except ImageRefused as exc:
        raise NotAnImage(exc.allowed) from None
    if decoded is None:
        raise NotAnImage(
            f"the body ({len(data)} bytes) does not decode whole as a PNG, JPEG or WebP image"
            " (truncated, corrupt, or not an image)"
        )
    if expected and decoded.format != expected:
        raise NotAnImage(f"the body is a {decoded.format} image; the request asked for {expected}")
    return Verified(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        format=decoded.format,
        content_type=decoded.mime_type,
        width=decoded.width,
        height=decoded.height,
    )
