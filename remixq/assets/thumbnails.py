"""Thumbnails of stored images, for the API's `?size=N`: the longest side at most N pixels
(never enlarged), in the original's format, made once and kept in the storage beside it
(`thumbnails/<N>/...`), so a second request only reads it."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from remixq.assets.storage import Storage, thumbnail_key

MIN_SIZE, MAX_SIZE = 64, 1024
_SAVE: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 85},
    "WEBP": {"quality": 80},
    "PNG": {"optimize": True},
}


def thumbnail(storage: Storage, *, key: str, sha256: str, content_type: str, size: int) -> str:
    """The key of the thumbnail of `size` of the stored image at `key` (made now if absent)."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"a thumbnail size from {MIN_SIZE} to {MAX_SIZE}, not {size}")
    extension = key.rsplit(".", 1)[-1]
    found = thumbnail_key(sha256, size, extension)
    if storage.exists(found):
        return found
    with Image.open(io.BytesIO(storage.get(key))) as original:
        fmt = original.format or "PNG"
        original.thumbnail((size, size))
        out = io.BytesIO()
        original.save(out, format=fmt, **_SAVE.get(fmt, {}))
    storage.put(found, out.getvalue(), content_type)
    return found
