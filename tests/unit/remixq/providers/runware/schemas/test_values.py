"""``is_image_reference``: the image reference forms a request may carry, and near misses."""

from __future__ import annotations

import base64

import pytest

from remixq.providers.runware import is_image_reference
from tests.support.runware_requests import IMAGE_UUID, JPEG_B64, PNG_B64, WEBP_B64


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (IMAGE_UUID, True),
        (IMAGE_UUID.upper(), True),
        ("https://assets.example.test/a.jpg?sig=1", True),
        ("http://127.0.0.1:8080/a.png", True),
        (f"data:image/png;base64,{PNG_B64}", True),
        (f"data:image/webp;base64,{WEBP_B64}", True),
        (PNG_B64, True),
        (JPEG_B64, True),
        (WEBP_B64, True),
        ("", False),
        ("cat.jpg", False),
        ("cafe", False),  # valid base64, but not an image
        (base64.b64encode(b"GIF89a" + b"\x00" * 10).decode(), False),
        ("ftp://assets.example.test/a.jpg", False),
        ("https://", False),
        ("https://assets.example.test:99999/a.jpg", False),  # no such port
        ("https://assets.example.test/a b.jpg", False),
        ("data:text/plain;base64,aGVsbG8=", False),
        ("data:image/png;base64,not base64!", False),
        ("data:image/png,rawbytes", False),
        (PNG_B64[:-1], False),  # broken padding
        ("c64351d5-4c59-42f7-95e1", False),
    ],
)
def test_is_image_reference(value: str, ok: bool) -> None:
    assert is_image_reference(value) is ok
