"""Stand-in images: small, real, deterministic pictures drawn from a result's prompt and seed.

Only the parameters of an image are kept (``ImageSpec``); the bytes are drawn when asked for,
scaled down to a small longest side so serving thousands stays cheap, in the requested format
and the requested aspect ratio.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

FORMATS: dict[str, tuple[str, str, str]] = {
    # outputFormat -> (Pillow format, file extension, MIME type)
    "JPG": ("JPEG", "jpg", "image/jpeg"),
    "PNG": ("PNG", "png", "image/png"),
    "WEBP": ("WEBP", "webp", "image/webp"),
}
EXTENSIONS = {ext: fmt for fmt, (_, ext, _) in FORMATS.items()}


@dataclass(frozen=True)
class ImageSpec:
    """What is needed to draw one result again, byte for byte."""

    prompt: str
    seed: int
    width: int
    height: int
    output_format: str  # JPG | PNG | WEBP
    quality: int  # outputQuality, 20-99

    @property
    def extension(self) -> str:
        return FORMATS[self.output_format][1]

    @property
    def mime_type(self) -> str:
        return FORMATS[self.output_format][2]


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``width`` x ``height`` shrunk so the longest side is at most ``max_side``."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


# Drawing is what the simulator spends most of its CPU on in a campaign with image copies, on
# the cores the system it stands in for is measured on: the gradients are drawn once per angle
# and size, coloured through lookup tables, captioned in Pillow's bitmap font, and encoded with
# the fastest settings (3x cheaper than ImageOps.colorize, the TrueType font and the encoders'
# defaults, for the same picture).
_FONT = ImageFont.load_default_imagefont()
_ENCODER_OPTIONS: dict[str, dict[str, int]] = {"PNG": {"compress_level": 1}, "WEBP": {"method": 0}}


@functools.lru_cache(maxsize=64)
def _gradient(angle: int, size: tuple[int, int]) -> Image.Image:
    return Image.linear_gradient("L").rotate(angle).resize(size)


def _ramp(dark: int, light: int) -> list[int]:
    return [dark + (light - dark) * level // 255 for level in range(256)]


@functools.lru_cache(maxsize=256)
def render(spec: ImageSpec, max_side: int) -> bytes:
    """The encoded image for ``spec`` (cached: getResponse may ask for base64 output again)."""
    size = scaled_size(spec.width, spec.height, max_side)
    digest = hashlib.sha256(f"{spec.seed}:{spec.prompt}".encode()).digest()
    rng = random.Random(digest)
    dark = (digest[0] // 2, digest[1] // 2, digest[2] // 2)
    light = (128 + digest[3] // 2, 128 + digest[4] // 2, 128 + digest[5] // 2)
    gradient = _gradient(rng.choice((0, 45, 90, 135)), size)
    channels = zip(dark, light, strict=True)
    image = Image.merge("RGB", [gradient.point(_ramp(low, high)) for low, high in channels])
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        x1, y1 = x0 + rng.randrange(1, size[0] // 2 + 2), y0 + rng.randrange(1, size[1] // 2 + 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), outline=colour, width=2)
    caption = " ".join(spec.prompt.split()[:6])
    draw.text((4, 4), caption, fill=(255, 255, 255), font=_FONT)
    draw.text((4, size[1] - 14), f"seed {spec.seed}", fill=(255, 255, 255), font=_FONT)
    pil_format = FORMATS[spec.output_format][0]
    out = io.BytesIO()
    options = _ENCODER_OPTIONS.get(pil_format, {})
    if pil_format == "PNG":
        image.save(out, format="PNG", **options)
    else:
        image.save(out, format=pil_format, quality=spec.quality, **options)
    return out.getvalue()


def as_base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def as_data_uri(data: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{as_base64(data)}"
