"""The API's view of image assets against a real receiver: each image's asset status in the
lists, and `GET /api/v1/images/{uuid}/content` streaming the stored bytes (from a folder and
from an S3 bucket on a local S3-compatible server) with caching headers, thumbnails made once,
and JSON errors for what is not stored."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from remixq.assets.storage import Storage, content_key, open_storage
from remixq.config import load_settings
from remixq.db import make_engine, utcnow
from remixq.models import Campaign, Image, Job
from tests.support.api import Api, api_env, api_receiver, new_key
from tests.support.images import jpeg_bytes
from tests.support.s3 import S3_ENV, make_bucket, s3_server

pytestmark = pytest.mark.e2e

PICTURE = jpeg_bytes((300, 200))


@pytest.fixture(scope="module", params=["file", "s3"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Api, Engine, Storage]]:
    tmp = tmp_path_factory.mktemp(f"api-assets-{request.param}")
    with s3_server() as endpoint:
        if request.param == "file":
            storage_env = {"REMIXQ_STORAGE_URL": (tmp / "images").as_uri()}
        else:
            make_bucket(endpoint, "served")
            storage_env = {
                "REMIXQ_STORAGE_URL": "s3://served/images",
                "REMIXQ_S3_ENDPOINT_URL": endpoint,
                **S3_ENV,
            }
        env = api_env(f"api_assets_{request.param}", tmp / "data", **storage_env)
        storage = open_storage(
            load_settings(
                storage_url=storage_env["REMIXQ_STORAGE_URL"],
                s3_endpoint_url=storage_env.get("REMIXQ_S3_ENDPOINT_URL"),
            )
        )
        engine = make_engine(env["REMIXQ_DATABASE_URL"])
        with api_receiver(env, tmp) as base:
            yield Api(base, new_key(env, tmp, "reader", read_only=True)), engine, storage
        engine.dispose()


def _images(engine: Engine, storage: Storage) -> dict[str, str]:
    """A campaign with one stored image (its bytes in the storage), one pending, one failed."""
    digest = hashlib.sha256(PICTURE).hexdigest()
    key = content_key(digest, "jpg")
    storage.put(key, PICTURE, "image/jpeg")
    uuids = {name: str(uuid.uuid4()) for name in ("stored", "pending", "failed")}
    with Session(engine) as session, session.begin():
        campaign = Campaign(name=f"assets-{uuid.uuid4().hex[:8]}")
        session.add(campaign)
        session.flush()
        job = Job(
            campaign_id=campaign.id,
            task_uuid=str(uuid.uuid4()),
            model="ideogram:4@2",
            request={"model": "ideogram:4@2"},
            number_results=3,
            status="completed",
        )
        session.add(job)
        session.flush()
        session.add_all(
            [
                Image(
                    job_id=job.id,
                    image_uuid=uuids["stored"],
                    raw={},
                    asset_status="stored",
                    sha256=digest,
                    size_bytes=len(PICTURE),
                    content_type="image/jpeg",
                    format="JPEG",
                    width=300,
                    height=200,
                    storage_key=key,
                    fetched_at=utcnow(),
                ),
                Image(
                    job_id=job.id,
                    image_uuid=uuids["pending"],
                    raw={},
                    asset_reason="HTTP 503 from im.runware.ai",
                ),
                Image(
                    job_id=job.id,
                    image_uuid=uuids["failed"],
                    raw={},
                    asset_status="failed",
                    asset_reason="the link expired",
                ),
            ]
        )
        uuids["campaign"] = str(campaign.id)
    return uuids


def test_content_is_streamed_with_caching_headers(
    served: tuple[Api, Engine, Storage],
) -> None:
    api, engine, storage = served
    uuids = _images(engine, storage)
    answer = api.get(f"/images/{uuids['stored']}/content")
    assert answer.status_code == 200, answer.text
    assert answer.content == PICTURE and answer.headers["Content-Type"] == "image/jpeg"
    digest = hashlib.sha256(PICTURE).hexdigest()
    assert answer.headers["ETag"] == f'"{digest}"'
    assert answer.headers["Content-Length"] == str(len(PICTURE))
    assert "immutable" in answer.headers["Cache-Control"]
    again = api.get(f"/images/{uuids['stored']}/content", headers={"If-None-Match": f'"{digest}"'})
    assert again.status_code == 304 and again.content == b""

    listed = api.get(f"/campaigns/{uuids['campaign']}/images").json()["items"]
    by_uuid = {item["image_uuid"]: item for item in listed}
    stored = by_uuid[uuids["stored"]]
    assert stored["asset_status"] == "stored" and stored["sha256"] == digest
    assert (stored["width"], stored["height"], stored["size_bytes"]) == (300, 200, len(PICTURE))
    assert stored["content_url"] == f"/api/v1/images/{uuids['stored']}/content"
    assert by_uuid[uuids["failed"]]["asset_reason"] == "the link expired"
    assert by_uuid[uuids["pending"]]["content_url"] is None
    campaign = api.get(f"/campaigns/{uuids['campaign']}").json()
    assert campaign["assets"] == {"stored": 1, "pending": 1, "failed": 1}


def test_a_thumbnail_is_made_once_and_kept(served: tuple[Api, Engine, Storage]) -> None:
    api, engine, storage = served
    uuids = _images(engine, storage)
    digest = hashlib.sha256(PICTURE).hexdigest()
    kept = f"thumbnails/64/{digest[:2]}/{digest[2:4]}/{digest}.jpg"
    first = api.get(f"/images/{uuids['stored']}/content", params={"size": 64})
    assert first.status_code == 200 and first.headers["ETag"] == f'"{digest}-64"'
    with PILImage.open(__import__("io").BytesIO(first.content)) as picture:
        assert picture.format == "JPEG" and picture.size == (64, 43)
    assert storage.exists(kept) and storage.get(kept) == first.content
    assert api.get(f"/images/{uuids['stored']}/content?size=64").content == first.content


def test_what_is_not_stored_is_a_json_error(served: tuple[Api, Engine, Storage]) -> None:
    api, engine, storage = served
    uuids = _images(engine, storage)
    pending = api.get(f"/images/{uuids['pending']}/content")
    assert pending.status_code == 409
    error = pending.json()["error"]
    assert error["code"] == "asset_not_stored" and error["asset_status"] == "pending"
    assert "HTTP 503" in error["message"]
    assert api.get(f"/images/{uuids['failed']}/content").json()["error"]["reason"] == (
        "the link expired"
    )
    missing = api.get(f"/images/{uuid.uuid4()}/content")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    for size in ("10", "5000", "big"):
        bad = api.get(f"/images/{uuids['stored']}/content", params={"size": size})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
    anonymous = api.with_key(None).get(f"/images/{uuids['stored']}/content")
    assert anonymous.status_code == 401
    assert api.get("/images/not-a-uuid/content").status_code == 404


def test_status_paths(tmp_path: Path) -> None:
    """The settings' default storage is the data folder's `images` (what the receiver serves
    when REMIXQ_STORAGE_URL is unset)."""
    settings = load_settings(data_dir=tmp_path)
    assert settings.storage == (tmp_path / "images").resolve().as_uri()
