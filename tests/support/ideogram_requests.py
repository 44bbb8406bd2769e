"""Ideogram native requests for tests: a valid base, image data URIs of each format, and a way
to change one field of the base (``DELETE`` removes it)."""

from __future__ import annotations

import base64
import copy
from typing import Any

from tests.support.images import jpeg_bytes, png_bytes, webp_bytes

DELETE = object()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


PNG = data_uri(png_bytes())
JPEG = data_uri(jpeg_bytes(), "image/jpeg")
WEBP = data_uri(webp_bytes(), "image/webp")
IMAGE_URL = "https://assets.example.test/in.png"

BASE: dict[str, Any] = {"provider": "ideogram", "image": PNG, "prompt": "A seaside ticket booth"}


def request(**changes: Any) -> dict[str, Any]:
    """The base request (without ``provider``) with ``changes`` applied."""
    body = {k: v for k, v in copy.deepcopy(BASE).items() if k != "provider"}
    for name, value in changes.items():
        if value is DELETE:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def line(**changes: Any) -> dict[str, Any]:
    """A campaign line for the native API: ``request(**changes)`` and ``"provider": "ideogram"``."""
    return {"provider": "ideogram", **request(**changes)}


def big_png(size: int) -> bytes:
    """A PNG signature padded to ``size`` bytes (the schema reads the signature, not pixels)."""
    head = png_bytes()
    return head + b"\0" * max(0, size - len(head))
