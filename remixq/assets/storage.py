"""Where image assets are kept, chosen by `REMIXQ_STORAGE_URL`: a local folder (`file://`, by
default `images` in the data folder) or an S3-compatible bucket (`s3://bucket/prefix`; boto3,
the `s3` extra; endpoint from `REMIXQ_S3_ENDPOINT_URL`, credentials and region from the usual
AWS variables).

Keys are content-addressed: `sha256/ab/cd/<hex>.<ext>` from the SHA-256 of the bytes, so
identical bytes are stored once, a second `put` of them writes nothing, and a key names its
content forever (the API serves it as immutable). Thumbnails are kept beside them under
`thumbnails/<size>/...`, made once.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from remixq.config import Settings
from remixq.errors import FieldError, InvalidInput

_CHUNK = 64 * 1024


def content_key(sha256: str, extension: str) -> str:
    """The key of the bytes whose SHA-256 (hex) is `sha256`."""
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


def thumbnail_key(sha256: str, size: int, extension: str) -> str:
    return f"thumbnails/{size}/{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


class Storage(Protocol):
    """A place for the assets' bytes; `put` of a key already there writes nothing."""

    url: str

    def exists(self, key: str) -> bool: ...

    def put(self, key: str, data: bytes, content_type: str) -> bool:
        """Store `data` under `key` unless it is there; True when it was written now."""

    def get(self, key: str) -> bytes: ...

    def stream(self, key: str) -> tuple[int, Iterator[bytes]]:
        """The size of what `key` holds and its bytes in chunks; KeyError when absent."""


def _checked(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class FileStorage:
    """A local folder; each file written under a temporary name, synced, then renamed, so a
    reader never sees half a file and a crash leaves none under a key."""

    def __init__(self, root: Path):
        self.root = root
        self.url = root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def put(self, key: str, data: bytes, content_type: str) -> bool:  # noqa: ARG002 (a file has none)
        path = self._path(key)
        if path.is_file() and path.stat().st_size == len(data):
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            temporary.replace(path)
        finally:
            temporary.unlink(missing_ok=True)
        return True

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def stream(self, key: str) -> tuple[int, Iterator[bytes]]:
        path = self._path(key)
        try:
            file = path.open("rb")
        except FileNotFoundError:
            raise KeyError(key) from None
        size = os.fstat(file.fileno()).st_size

        def chunks() -> Iterator[bytes]:
            with file:
                while chunk := file.read(_CHUNK):
                    yield chunk

        return size, chunks()


class S3Storage:
    """An S3-compatible bucket, through boto3 (imported when first used: the `s3` extra)."""

    def __init__(self, bucket: str, prefix: str, *, endpoint_url: str | None = None):
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._endpoint_url = endpoint_url
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise InvalidInput(
                    [
                        FieldError(
                            "REMIXQ_STORAGE_URL",
                            self.url,
                            "an s3:// URL with boto3 installed (pip install 'remixq[s3]'),"
                            " or a file:// URL",
                        )
                    ]
                ) from None
            self._client = boto3.client("s3", endpoint_url=self._endpoint_url)
        return self._client

    def _key(self, key: str) -> str:
        key = _checked(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put(self, key: str, data: bytes, content_type: str) -> bool:
        if self.exists(key):
            return False
        self.client.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
        )
        return True

    def _get_object(self, key: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise KeyError(key) from None
            raise

    def get(self, key: str) -> bytes:
        data: bytes = self._get_object(key)["Body"].read()
        return data

    def stream(self, key: str) -> tuple[int, Iterator[bytes]]:
        found = self._get_object(key)
        body = found["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(_CHUNK)
            finally:
                body.close()

        return int(found["ContentLength"]), chunks()


def open_storage(settings: Settings) -> Storage:
    """The storage `REMIXQ_STORAGE_URL` names (by default a folder in the data folder)."""
    url = settings.storage
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path:
        return FileStorage(Path(unquote(parts.path)))
    if parts.scheme == "s3" and parts.netloc:
        return S3Storage(parts.netloc, unquote(parts.path), endpoint_url=settings.s3_endpoint_url)
    raise InvalidInput(
        [
            FieldError(
                "REMIXQ_STORAGE_URL",
                url,
                "file:///absolute/path or s3://bucket/prefix",
            )
        ]
    )
