"""Real, tiny image files for campaign tests: bytes Pillow wrote, which decode as what they are."""

from __future__ import annotations

import io

from PIL import Image


def image_bytes(fmt: str, size: tuple[int, int] = (2, 2), color: str = "orange") -> bytes:
    """An image of ``size`` in ``fmt`` (``PNG``, ``JPEG`` or ``WEBP``), as its file would hold."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def png_bytes(size: tuple[int, int] = (2, 2)) -> bytes:
    return image_bytes("PNG", size)


def jpeg_bytes(size: tuple[int, int] = (2, 2)) -> bytes:
    return image_bytes("JPEG", size)


def webp_bytes(size: tuple[int, int] = (2, 2)) -> bytes:
    return image_bytes("WEBP", size)
