"""The stored copies of generated images (issue 18's remixq.assets), as the dashboard serves
them: an image whose asset is stored is served from the storage (ETag: its SHA-256, cached as
immutable); any other image falls back to its provider's URL (webhook_receiver.dashboard.images).
In an installation without remixq.assets every image falls back."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq.models import Image

STORED = "stored"


def status_of(image: Image) -> str | None:
    """The image's asset status (pending, stored, failed, refused), when assets are kept."""
    status = getattr(image, "asset_status", None)
    return str(status) if status is not None else None


def _storage(app: Flask) -> Any:
    """The configured storage (remixq.assets.storage.open_storage), made once per process;
    None without remixq.assets."""
    cached = app.extensions.get("remixq.dashboard.storage")
    if cached is None:
        try:
            storage = importlib.import_module("remixq.assets.storage")
        except ImportError:
            return None
        from webhook_receiver.state import state

        cached = app.extensions["remixq.dashboard.storage"] = storage.open_storage(
            state(app).settings
        )
    return cached


@dataclass(frozen=True)
class Stored:
    """Where an image's stored bytes are: its storage and key, and its file extension."""

    storage: Any
    key: str
    extension: str

    def read(self) -> bytes:
        data: bytes = self.storage.get(self.key)
        return data


def locate(app: Flask, db: Session, image_uuids: Sequence[str]) -> dict[str, Stored]:
    """The stored copies of these images (by image UUID), in one query; none without
    remixq.assets."""
    if not image_uuids or not hasattr(Image, "storage_key"):
        return {}
    storage = _storage(app)
    if storage is None:
        return {}
    image: Any = Image
    rows = db.execute(
        select(image.image_uuid, image.storage_key).where(
            image.image_uuid.in_(list(image_uuids)),
            image.asset_status == STORED,
            image.storage_key.is_not(None),
        )
    )
    return {
        str(uuid): Stored(storage, key, key.rsplit(".", 1)[-1] if "." in key else "bin")
        for uuid, key in rows
    }


def serve(app: Flask, db: Session, image: Image, size: int | None) -> Response | None:  # noqa: ARG001
    """The stored bytes of `image` (`size`: the thumbnail asked for; the full image is served
    until thumbnails are kept), or None when it is not stored here."""
    key = getattr(image, "storage_key", None)
    digest = getattr(image, "sha256", None)
    if status_of(image) != STORED or not key or not digest:
        return None
    storage = _storage(app)
    if storage is None:
        return None
    etag = f'"{digest}"'
    if request.headers.get("If-None-Match") == etag:
        response = Response(status=304)
    else:
        try:
            length, chunks = storage.stream(key)
        except KeyError:
            return None
        response = Response(chunks, mimetype=getattr(image, "content_type", None) or None)
        response.headers["Content-Length"] = str(length)
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
