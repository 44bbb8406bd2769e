"""Reference images read from local files, for campaign files only, inlined as data URIs.

A path is taken relative to the campaign file's folder and accepted only when, symlinks
resolved, it lies inside that folder or inside a folder the operator named
(``REMIXQ_IMAGE_DIRS``, ``remixq submit --image-dir``): an absolute path, a ``..`` or a symlink
leading elsewhere is refused. The file must be a regular file of at most 10 MB whose bytes decode
as the image format its extension claims (PNG, JPEG or WebP, read with Pillow, with a pixel cap
against decompression bombs); the data URI's type is the decoded format's. Requests that arrive
over HTTP never come here: their reader is given no ``LocalImages`` (``campaigns.read_requests``).
"""

from __future__ import annotations

import base64
import io
import os
import stat
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from PIL import Image

MAX_LOCAL_IMAGE_BYTES = 10 * 1024 * 1024  # Ideogram's own limit for an input image
# Far above any reference image worth sending (8,000 x 6,000), far below what a small file can
# claim: a 10 MB PNG of one colour may declare billions of pixels, each decoded into memory.
MAX_LOCAL_IMAGE_PIXELS = 48_000_000

# The extension a path ends with -> the format its bytes must decode as.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# Pillow names a JPEG that carries several pictures (as cameras write them) MPO; it is a JPEG.
_SAME_FORMAT = {"MPO": "JPEG"}

OUTSIDE = (
    "an image file inside the campaign file's folder or a folder named by REMIXQ_IMAGE_DIRS or"
    " --image-dir (symlinks resolved; this path leads outside them)"
)


class ImageRefused(Exception):
    """A local image path refused; ``allowed`` says what would be accepted."""

    def __init__(self, allowed: str):
        super().__init__(allowed)
        self.allowed = allowed


@dataclass(frozen=True)
class LocalImages:
    """Where a campaign's local images may come from: paths are relative to ``base`` (the
    campaign file's folder) and must resolve inside it or inside one of ``folders``."""

    base: Path
    folders: tuple[Path, ...] = ()
    _read: dict[Path, str] = field(default_factory=dict, compare=False, repr=False)

    def data_uri(self, value: str) -> str:
        """The image file ``value`` names as a ``data:image/...;base64,`` URI; ImageRefused
        saying what is allowed otherwise. A file named by several requests is read once."""
        try:
            resolved = (self.base / value).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a NUL byte
            raise ImageRefused(
                "a UUID, an http(s) URL, a data URI, base64, or an existing image file"
            ) from None
        if not any(resolved.is_relative_to(folder) for folder in self._allowed):
            raise ImageRefused(OUTSIDE)
        claimed = FORMATS.get(Path(value).suffix.lower())
        if claimed is None:
            raise ImageRefused("a .png, .jpg, .jpeg or .webp image file")
        if resolved not in self._read:
            self._read[resolved] = _encode(_read_capped(resolved), claimed)
        return self._read[resolved]

    @cached_property
    def _allowed(self) -> list[Path]:
        return [folder.resolve() for folder in (self.base, *self.folders)]


def _read_capped(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_LOCAL_IMAGE_BYTES, its size checked before
    they are read (a FIFO or a device is not opened for reading: O_NONBLOCK, then fstat)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        raise ImageRefused("a readable image file") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ImageRefused("a regular image file")
        if info.st_size > MAX_LOCAL_IMAGE_BYTES:
            raise ImageRefused("an image file of at most 10 MB")
        data = file.read(MAX_LOCAL_IMAGE_BYTES + 1)
    if len(data) > MAX_LOCAL_IMAGE_BYTES:  # it grew after fstat
        raise ImageRefused("an image file of at most 10 MB")
    return data


def _encode(data: bytes, claimed: str) -> str:
    decoded = image_format(data)
    if decoded is None:
        raise ImageRefused(f"a {claimed} image (the file's bytes do not decode as one)")
    if decoded != claimed:
        raise ImageRefused(f"a {claimed} image, as its extension says (its bytes are {decoded})")
    return f"data:{_MIME[decoded]};base64,{base64.b64encode(data).decode()}"


def image_format(data: bytes) -> str | None:
    """``PNG``, ``JPEG`` or ``WEBP`` when ``data`` decodes whole as that image within the pixel
    cap; None otherwise. Raises ImageRefused for an image over the cap."""
    found = decode(data)
    return found.format if found is not None else None


@dataclass(frozen=True)
class Decoded:
    """What decoding an image's bytes found: its format (``PNG``, ``JPEG``, ``WEBP``) and size."""

    format: str
    width: int
    height: int

    @property
    def mime_type(self) -> str:
        return _MIME[self.format]


def decode(data: bytes) -> Decoded | None:
    """The image ``data`` holds when it decodes whole (container and pixels) as a PNG, JPEG or
    WebP within the pixel cap; None otherwise (not an image, truncated, corrupt, another
    format). Raises ImageRefused for an image over the cap. Used for local reference images and
    for the copies of generated ones (remixq.assets)."""
    try:
        with warnings.catch_warnings():
            # Pillow warns, then raises, past its own (process-wide) limit; ours is lower.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "WEBP")) as image:
                found = _SAME_FORMAT.get(image.format or "", image.format)
                width, height = image.size
                if width * height > MAX_LOCAL_IMAGE_PIXELS:
                    raise ImageRefused(
                        f"an image of at most {MAX_LOCAL_IMAGE_PIXELS:,} pixels"
                        f" (it declares {width}x{height})"
                    )
                if found == "PNG":
                    image.verify()  # the chunks and their CRCs (it spends the image object)
                else:  # JPEG and WebP carry no checksums: decoding the pixels checks it all
                    image.load()  # a truncated or corrupt stream fails here
            if found == "PNG":
                with Image.open(io.BytesIO(data), formats=("PNG",)) as image:
                    image.load()  # the pixels
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(
            f"an image of at most {MAX_LOCAL_IMAGE_PIXELS:,} pixels (it declares more)"
        ) from None
    except Exception:  # noqa: BLE001 (hostile bytes make Pillow's decoders raise many types)
        return None
    if found is None or found not in _MIME:
        return None
    return Decoded(found, width, height)
