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
    """The configured storage (the receiver's, or remixq.assets.storage.open_storage), made
    once per process; None without remixq.assets."""
    from webhook_receiver.state import state

    receiver = state(app)
    if hasattr(receiver, "storage"):
        return receiver.storage
    cached = app.extensions.get("remixq.dashboard.storage")
    if cached is None:
        storage = _module("remixq.assets.storage")
        if storage is None:
            return None
        cached = app.extensions["remixq.dashboard.storage"] = storage.open_storage(
            receiver.settings
        )
    return cached


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


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
    """The stored bytes of `image` (`size`: its thumbnail, made once and kept by
    remixq.assets.thumbnails), or None when it is not stored here."""
    key = getattr(image, "storage_key", None)
    digest = getattr(image, "sha256", None)
    if status_of(image) != STORED or not key or not digest:
        return None
    storage = _storage(app)
    if storage is None:
        return None
    content_type = getattr(image, "content_type", None) or "application/octet-stream"
    tag = digest
    thumbnails = _module("remixq.assets.thumbnails")
    if size is not None and thumbnails is not None:
        key = thumbnails.thumbnail(
            storage, key=key, sha256=digest, content_type=content_type, size=size
        )
        tag = f"{digest}-{size}"
    etag = f'"{tag}"'
    if request.if_none_match.contains(tag):
        response = Response(status=304)
    else:
        try:
            length, chunks = storage.stream(key)
        except KeyError:
            return None
        response = Response(chunks, mimetype=content_type, direct_passthrough=True)
        response.content_length = length
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
