"""Storage backends: a local folder and an S3 bucket on a local S3-compatible server (moto in
server mode): content-addressed keys, one write for identical bytes, streaming reads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from remixq.assets.storage import FileStorage, S3Storage, Storage, content_key, open_storage
from remixq.config import load_settings
from remixq.errors import InvalidInput
from tests.support.images import jpeg_bytes
from tests.support.s3 import make_bucket, s3_server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["file", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "file":
        return open_storage(load_settings(storage_url=(tmp_path / "images").as_uri()))
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"assets-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    make_bucket(endpoint, bucket)
    return open_storage(
        load_settings(storage_url=f"s3://{bucket}/remixq/images", s3_endpoint_url=endpoint)
    )


def test_identical_bytes_are_stored_once(storage: Storage) -> None:
    data = jpeg_bytes((8, 8))
    key = content_key(hashlib.sha256(data).hexdigest(), "jpg")
    assert key.startswith("sha256/") and key.endswith(".jpg")
    assert not storage.exists(key)
    assert storage.put(key, data, "image/jpeg") is True
    assert storage.put(key, data, "image/jpeg") is False  # already there: nothing written
    assert storage.exists(key) and storage.get(key) == data
    size, chunks = storage.stream(key)
    assert size == len(data) and b"".join(chunks) == data
    with pytest.raises(KeyError):
        storage.get("sha256/00/00/missing.jpg")
    with pytest.raises(KeyError):
        storage.stream("sha256/00/00/missing.jpg")


def test_the_s3_objects_are_under_the_prefix(s3_endpoint: str) -> None:
    import boto3

    make_bucket(s3_endpoint, "prefixed")
    storage = S3Storage("prefixed", "/a/b/", endpoint_url=s3_endpoint)
    storage.put("sha256/ab/cd/x.png", b"png", "image/png")
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket="prefixed")
    (entry,) = listed["Contents"]
    assert entry["Key"] == "a/b/sha256/ab/cd/x.png"
    head = boto3.client("s3", endpoint_url=s3_endpoint).head_object(
        Bucket="prefixed", Key="a/b/sha256/ab/cd/x.png"
    )
    assert head["ContentType"] == "image/png"


def test_files_are_written_whole_and_owner_only(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "images")
    storage.put("sha256/ab/cd/x.jpg", b"bytes", "image/jpeg")
    path = tmp_path / "images" / "sha256" / "ab" / "cd" / "x.jpg"
    assert path.read_bytes() == b"bytes" and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["x.jpg"]  # no temporary left
    with pytest.raises(ValueError, match="not a storage key"):
        storage.put("../../etc/passwd", b"x", "text/plain")


def test_the_default_storage_is_a_folder_in_the_data_folder(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    storage = open_storage(settings)
    assert isinstance(storage, FileStorage)
    assert storage.root == (tmp_path / "data" / "images").resolve()


@pytest.mark.parametrize("url", ["ftp://host/x", "file://server/share", "s3://"])
def test_a_bad_storage_url_is_refused_naming_the_variable(url: str) -> None:
    with pytest.raises(InvalidInput, match="REMIXQ_STORAGE_URL"):
        open_storage(load_settings(storage_url=url))
