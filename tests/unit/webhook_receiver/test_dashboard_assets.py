"""The dashboard's images from their stored copies (remixq.assets, issue 18), both backends: a
stored image is served from the storage (a thumbnail made once for `?size=N`), with an ETag;
the zip holds its bytes. It needs remixq.assets: without it these tests skip (and every image
falls back to its provider's URL, tested in test_dashboard.py)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as Pillow
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from remixq.config import load_settings
from remixq.models import Image, Job
from tests.support.dashboard import Dashboard, dashboard, new_key, variant_campaign

storage_module: Any = pytest.importorskip("remixq.assets.storage")


@pytest.fixture
def ui(engine: Engine, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard(engine, tmp_path) as client:
        _, key = new_key(engine)
        client.sign_in(key)
        yield client


def _stored(engine: Engine, tmp_path: Path) -> tuple[int, str, bytes]:
    """A campaign whose one image is stored (a 300x200 PNG): its id, the image's UUID, bytes."""
    campaign_id = variant_campaign(engine, [None])
    out = io.BytesIO()
    Pillow.new("RGB", (300, 200), "teal").save(out, "PNG")
    data = out.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    key = storage_module.content_key(digest, "png")
    storage_module.open_storage(load_settings(data_dir=tmp_path)).put(key, data, "image/png")
    with Session(engine) as session, session.begin():
        image = session.scalars(select(Image).join(Job).where(Job.campaign_id == campaign_id)).one()
        session.execute(
            update(Image)
            .where(Image.id == image.id)
            .values(
                asset_status="stored",
                sha256=digest,
                storage_key=key,
                content_type="image/png",
                size_bytes=len(data),
            )
        )
        return campaign_id, str(image.image_uuid), data


def test_a_stored_image_is_served_from_the_storage(
    ui: Dashboard, engine: Engine, tmp_path: Path
) -> None:
    _, image_uuid, data = _stored(engine, tmp_path)
    full = ui.client.get(f"/images/{image_uuid}")
    assert full.status_code == 200 and full.mimetype == "image/png" and full.data == data
    etag = full.headers["ETag"]
    assert "immutable" in full.headers["Cache-Control"]
    again = ui.client.get(f"/images/{image_uuid}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    thumb = ui.client.get(f"/images/{image_uuid}?size=64")
    assert thumb.status_code == 200
    with Pillow.open(io.BytesIO(thumb.data)) as small:
        assert max(small.size) == 64


def test_the_zip_holds_the_stored_images(ui: Dashboard, engine: Engine, tmp_path: Path) -> None:
    campaign_id, image_uuid, data = _stored(engine, tmp_path)
    archive = zipfile.ZipFile(
        io.BytesIO(ui.client.get(f"/campaigns/{campaign_id}/images.zip").data)
    )
    (name,) = [n for n in archive.namelist() if n.startswith("images/")]
    assert image_uuid in name and archive.read(name) == data
    assert name in archive.read("manifest.jsonl").decode()
