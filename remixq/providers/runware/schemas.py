"""The request contract of Runware's Ideogram Remix models: one strict schema per model.

``parse_request`` turns untrusted JSON (a campaign line, an API body) into one of the three
request models or raises ``InvalidInput`` listing every problem at once, each as a
``FieldError`` with the dotted path, the bad value and what is allowed there. ``build_task``
turns a parsed request into the exact task object sent to ``POST /v1``.

The schemas follow the model pages in ``../shared/spec`` (001 = ``ideogram:1@2``,
000 = ``ideogram:4@2``, 003 = ``ideogram:4@remix``): every documented parameter with its type,
range, allowed values and nesting, nothing else. Types are strict (``"3"`` is not an integer,
``1.0`` is not an integer, ``1`` is not a boolean) and unknown fields are refused, because the
provider bills per attempt and a typo caught here costs nothing. Points the pages leave open are
decided in ``assumptions``.
"""

from __future__ import annotations

import base64
import binascii
import re
import types
import uuid
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Self, TypeAlias, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from remixq.errors import FieldError, InvalidInput
from remixq.providers.runware import assumptions as A

MODEL_IDS = ("ideogram:1@2", "ideogram:4@2", "ideogram:4@remix")
_V1, _V3, _V4 = MODEL_IDS

# 001, "The following dimension combinations are supported" (11 pairs, 1K).
IDEOGRAM_1_SIZES: tuple[tuple[int, int], ...] = (
    (768, 1232), (1232, 768), (720, 1280), (1280, 720), (1152, 768), (832, 1248),
    (1024, 768), (768, 1024), (1024, 1024), (512, 1536), (1536, 512),
)  # fmt: skip

# 003, the same table for 4.0 (23 pairs, 2K).
IDEOGRAM_4_SIZES: tuple[tuple[int, int], ...] = (
    (2048, 2048), (1440, 2880), (2880, 1440), (1664, 2496), (2496, 1664), (1792, 2240),
    (2240, 1792), (1440, 2560), (2560, 1440), (1600, 2560), (2560, 1600), (1728, 2304),
    (2304, 1728), (1296, 3168), (3168, 1296), (1152, 2944), (2944, 1152), (1248, 3328),
    (3328, 1248), (1280, 3072), (3072, 1280), (1024, 3072), (3072, 1024),
)  # fmt: skip

# None = no table documented, any positive integers (3.0; assumptions.V3_SIZES).
_SIZES: dict[str, tuple[tuple[int, int], ...] | None] = {
    _V1: IDEOGRAM_1_SIZES,
    _V3: A.V3_SIZES,
    _V4: IDEOGRAM_4_SIZES,
}

OutputType = Literal["URL", "base64Data", "dataURI"]
OutputFormat = Literal["JPG", "PNG", "WEBP"]
SafetyMode = Literal["none", "fast"]
MagicPrompt = Literal["AUTO", "ON", "OFF"]
RenderingSpeed = Literal["TURBO", "DEFAULT", "QUALITY"]
StyleType = Literal["AUTO", "GENERAL", "REALISTIC", "DESIGN", "RENDER_3D", "ANIME", "FICTION"]
# 000 says "Allowed values 62 values" without listing them; this is Ideogram's StylePresetV3
# enum (developer.ideogram.ai), which has exactly 62 entries (pinned by a test).
StylePreset = Literal[
    "80S_ILLUSTRATION", "90S_NOSTALGIA", "ABSTRACT_ORGANIC", "ANALOG_NOSTALGIA", "ART_BRUT",
    "ART_DECO", "ART_POSTER", "AURA", "AVANT_GARDE", "BAUHAUS", "BLUEPRINT", "BLURRY_MOTION",
    "BRIGHT_ART", "C4D_CARTOON", "CHILDRENS_BOOK", "COLLAGE", "COLORING_BOOK_I",
    "COLORING_BOOK_II", "CUBISM", "DARK_AURA", "DOODLE", "DOUBLE_EXPOSURE", "DRAMATIC_CINEMA",
    "EDITORIAL", "EMOTIONAL_MINIMAL", "ETHEREAL_PARTY", "EXPIRED_FILM", "FLAT_ART",
    "FLAT_VECTOR", "FOREST_REVERIE", "GEO_MINIMALIST", "GLASS_PRISM", "GOLDEN_HOUR",
    "GRAFFITI_I", "GRAFFITI_II", "HALFTONE_PRINT", "HIGH_CONTRAST", "HIPPIE_ERA", "ICONIC",
    "JAPANDI_FUSION", "JAZZY", "LONG_EXPOSURE", "MAGAZINE_EDITORIAL", "MINIMAL_ILLUSTRATION",
    "MIXED_MEDIA", "MONOCHROME", "NIGHTLIFE", "OIL_PAINTING", "OLD_CARTOONS", "PAINT_GESTURE",
    "POP_ART", "RETRO_ETCHING", "RIVIERA_POP", "SPOTLIGHT_80S", "STYLIZED_RED",
    "SURREAL_COLLAGE", "TRAVEL_POSTER", "VINTAGE_GEO", "VINTAGE_POSTER", "WATERCOLOR", "WEIRD",
    "WOODBLOCK_PRINT",
]  # fmt: skip
STYLE_PRESETS: tuple[str, ...] = get_args(StylePreset)

# --- value checks -----------------------------------------------------------------------------

_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_UUID4_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.I)
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_DATA_URI_RE = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(?P<payload>.*)", re.S)
_HEX8_PATTERN = r"^[0-9A-Fa-f]{8}$"

IMAGE_REFERENCE_TEXT = (
    "an image reference: a UUID, an http(s) URL, a data:image/...;base64 URI "
    "or base64-encoded JPEG/PNG/WebP data"
)


def is_http_url(value: str) -> bool:
    """An absolute http or https URL with a host and no whitespace."""
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_base64(text: str) -> bool:
    return len(text) % 4 == 0 and _BASE64_RE.fullmatch(text) is not None


def _looks_like_image(b64: str) -> bool:
    # 16 base64 characters decode to the 12 bytes the longest signature (WebP) needs.
    try:
        head = base64.b64decode(b64[:16], validate=True)
    except (binascii.Error, ValueError):
        return False
    signatures = A.RAW_BASE64_IMAGE_SIGNATURES
    if head.startswith(signatures["WEBP"]):
        return head[8:12] == b"WEBP"
    return head.startswith((signatures["JPEG"], signatures["PNG"]))


def is_image_reference(value: str) -> bool:
    """True for a UUID, an http(s) URL, a ``data:image/...;base64,`` URI or base64 image data.

    The exact rules are in ``assumptions.RAW_BASE64_IMAGE_SIGNATURES``.
    """
    if not isinstance(value, str) or not value:
        return False
    if _UUID_RE.fullmatch(value):
        return True
    if value[:5].lower() == "data:":
        match = _DATA_URI_RE.fullmatch(value)
        return match is not None and _is_base64(match["payload"])
    if "://" in value:
        return is_http_url(value)
    return _is_base64(value) and _looks_like_image(value)


def is_uuid4(value: str) -> bool:
    return isinstance(value, str) and _UUID4_RE.fullmatch(value) is not None


def _check_image_reference(value: str) -> str:
    if not is_image_reference(value):
        raise ValueError("not an image reference")
    return value


def _check_uuid4(value: str) -> str:
    if not is_uuid4(value):
        raise ValueError("not a UUID v4")
    return value


def _check_http_url(value: str) -> str:
    if not is_http_url(value):
        raise ValueError("not an http(s) URL")
    return value


def _check_strength_step(value: float) -> float:
    hundredths = value * 100
    if abs(hundredths - round(hundredths)) > A.STRENGTH_STEP_TOLERANCE:
        raise ValueError("not a multiple of 0.01")
    return value


# --- field helpers: each constraint carries the sentence that explains it ---------------------
# The description is what a refusal says is allowed, so the number in the rule and the number
# in the message cannot drift apart.


def _int_between(low: int, high: int) -> Any:
    return Field(ge=low, le=high, description=f"an integer from {low} to {high}")


def _text_between(low: int, high: int) -> Any:
    return Field(
        min_length=low, max_length=high, description=f"a string of {low} to {high} characters"
    )


def _one_of(choices: Any) -> Any:
    return Field(description="one of " + ", ".join(get_args(choices)))


def _image_list(low: int, high: int, what: str = "image reference", note: str = "") -> Any:
    count = f"exactly {low}" if low == high else f"{low} to {high}"
    plural = "" if high == 1 else "s"
    return Field(
        min_length=low,
        max_length=high,
        description=f"a list of {count} {what}{plural} (UUID, http(s) URL, data URI or base64)"
        + note,
    )


def _dimension(model_id: str) -> Any:
    if _SIZES[model_id] is None:
        return Field(
            gt=0, description="a positive integer (the model page documents no size table)"
        )
    return Field(gt=0, description=f"a positive integer; {_sizes_text(model_id)}")


def _sizes_text(model_id: str) -> str:
    sizes = _SIZES[model_id]
    if sizes is None:
        return "any positive integers (the model page documents no size table)"
    listed = ", ".join(f"{w}x{h}" for w, h in sizes)
    return f"width x height must be one of the documented sizes {listed}"


ImageReference = Annotated[
    str, AfterValidator(_check_image_reference), Field(description=IMAGE_REFERENCE_TEXT)
]
_BOOL = Field(description="true or false")


class _Strict(BaseModel):
    """Shared config: wire names (camelCase), strict types, no extras, no nulls, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        allow_inf_nan=False,
        frozen=True,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any) -> Any:
        # Optional means "may be omitted"; an explicit null would be sent on to the provider.
        if value is None:
            raise ValueError("null is not allowed")
        return value


# --- nested objects ---------------------------------------------------------------------------


class Safety(_Strict):
    """``safety`` on 1.0 and 3.0 (000, 001): checkContent and mode."""

    check_content: Annotated[bool, _BOOL] | None = None
    mode: Annotated[SafetyMode, _one_of(SafetyMode)] | None = None


class SafetyCheckOnly(_Strict):
    """``safety`` on 4.0 (003 documents only checkContent)."""

    check_content: Annotated[bool, _BOOL] | None = None


class ReferenceInputs(_Strict):
    """``inputs`` on 1.0 and 3.0: the one source image."""

    reference_images: Annotated[
        list[ImageReference], _image_list(A.REFERENCE_IMAGES_MIN, A.REFERENCE_IMAGES_MAX)
    ]


class SeedInputs(_Strict):
    """``inputs`` on 4.0: the source image is a single string (003)."""

    seed_image: ImageReference


class Ideogram1Options(_Strict):
    """``providerSettings.ideogram`` on 1.0 (001)."""

    magic_prompt: Annotated[MagicPrompt, _one_of(MagicPrompt)] | None = None
    remix_strength: Annotated[int, _int_between(1, 100)] | None = None
    rendering_speed: Annotated[RenderingSpeed, _one_of(RenderingSpeed)] | None = None
    style_reference_images: (
        Annotated[
            list[ImageReference],
            _image_list(A.STYLE_REFERENCE_IMAGES_MIN, A.STYLE_REFERENCE_IMAGES_MAX),
        ]
        | None
    ) = None
    style_type: Annotated[StyleType, _one_of(StyleType)] | None = None


class Ideogram3Options(Ideogram1Options):
    """``providerSettings.ideogram`` on 3.0 (000): 1.0's options plus characters and styles."""

    character_reference_images: (
        Annotated[
            list[ImageReference],
            _image_list(A.CHARACTER_REFERENCE_IMAGES_MIN, A.CHARACTER_REFERENCE_IMAGES_MAX),
        ]
        | None
    ) = None
    character_reference_images_mask: (
        Annotated[
            list[ImageReference],
            _image_list(
                A.CHARACTER_REFERENCE_IMAGES_MIN,
                A.CHARACTER_REFERENCE_IMAGES_MAX,
                "mask image reference",
                ", one per characterReferenceImages item",
            ),
        ]
        | None
    ) = None
    style_code: (
        Annotated[
            str,
            Field(
                pattern=_HEX8_PATTERN,
                description="exactly 8 hexadecimal characters, e.g. 1A2B3C4D",
            ),
        ]
        | None
    ) = None
    style_preset: (
        Annotated[
            StylePreset,
            Field(description="one of the 62 Ideogram style presets: " + ", ".join(STYLE_PRESETS)),
        ]
        | None
    ) = None


class Ideogram1ProviderSettings(_Strict):
    ideogram: Ideogram1Options


class Ideogram3ProviderSettings(_Strict):
    ideogram: Ideogram3Options


class Ideogram4Settings(_Strict):
    """``settings`` on 4.0 (003)."""

    rendering_speed: Annotated[RenderingSpeed, _one_of(RenderingSpeed)] | None = None
    copyright_detection: Annotated[bool, _BOOL] | None = None


# --- the three requests -----------------------------------------------------------------------


class _RemixRequestBase(_Strict):
    """Platform options every model page documents, minus the ones remixq manages."""

    MODEL_ID: ClassVar[str]

    model: str
    task_type: (
        Annotated[Literal["imageInference"], Field(description="imageInference (or omit it)")]
        | None
    ) = None
    task_uuid: (
        Annotated[
            str,
            AfterValidator(_check_uuid4),
            Field(description="a UUID v4 string, e.g. 6ba7b826-9dad-41d1-80b4-00c04fd430c8"),
        ]
        | None
    ) = Field(default=None, alias="taskUUID")
    output_type: Annotated[OutputType, _one_of(OutputType)] | None = None
    output_format: Annotated[OutputFormat, _one_of(OutputFormat)] | None = None
    output_quality: Annotated[int, _int_between(20, 99)] | None = None
    upload_endpoint: (
        Annotated[str, AfterValidator(_check_http_url), Field(description="an http(s) URL")] | None
    ) = None
    ttl: (
        Annotated[
            int,
            Field(ge=60, description="an integer of at least 60 (seconds), with outputType URL"),
        ]
        | None
    ) = None
    number_results: Annotated[int, _int_between(1, 20)] | None = None

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        # Field-level rules ran already; these span several fields. parse_request runs the
        # same checks on the raw input so they are reported even when a field failed too.
        problems = _combination_errors(
            self.MODEL_ID, self.model_dump(by_alias=True, exclude_unset=True)
        )
        if problems:
            detail = "; ".join(str(problem) for problem in problems)
            raise PydanticCustomError("combination", "{detail}", {"detail": detail})
        return self


class Ideogram1Remix(_RemixRequestBase):
    """``ideogram:1@2``, Ideogram 1.0 Remix (001)."""

    MODEL_ID: ClassVar[str] = _V1

    model: Literal["ideogram:1@2"]
    positive_prompt: Annotated[str, _text_between(1, 2000)]
    negative_prompt: Annotated[str, _text_between(1, 2000)] | None = None
    width: Annotated[int, _dimension(_V1)] | None = None
    height: Annotated[int, _dimension(_V1)] | None = None
    inputs: ReferenceInputs
    provider_settings: Ideogram1ProviderSettings | None = None
    safety: Safety | None = None


class Ideogram3Remix(_RemixRequestBase):
    """``ideogram:4@2``, Ideogram 3.0 Remix (000)."""

    MODEL_ID: ClassVar[str] = _V3

    model: Literal["ideogram:4@2"]
    positive_prompt: Annotated[str, _text_between(1, 2000)]
    negative_prompt: Annotated[str, _text_between(1, 2000)] | None = None
    width: Annotated[int, _dimension(_V3)] | None = None
    height: Annotated[int, _dimension(_V3)] | None = None
    inputs: ReferenceInputs
    provider_settings: Ideogram3ProviderSettings | None = None
    safety: Safety | None = None


class Ideogram4Remix(_RemixRequestBase):
    """``ideogram:4@remix``, Ideogram 4.0 Remix (003; "coming-soon" on the provider side)."""

    MODEL_ID: ClassVar[str] = _V4

    model: Literal["ideogram:4@remix"]
    positive_prompt: Annotated[str, _text_between(2, 2048)]
    width: Annotated[int, _dimension(_V4)] | None = None
    height: Annotated[int, _dimension(_V4)] | None = None
    inputs: SeedInputs
    strength: (
        Annotated[
            float,
            Field(ge=0, le=1, description="a number from 0 to 1 in steps of 0.01"),
            AfterValidator(_check_strength_step),
        ]
        | None
    ) = None
    settings: Ideogram4Settings | None = None
    safety: SafetyCheckOnly | None = None


RemixRequest: TypeAlias = Ideogram1Remix | Ideogram3Remix | Ideogram4Remix

_MODEL_CLASSES: dict[str, type[Ideogram1Remix] | type[Ideogram3Remix] | type[Ideogram4Remix]] = {
    _V1: Ideogram1Remix,
    _V3: Ideogram3Remix,
    _V4: Ideogram4Remix,
}
MODELS: dict[str, type[BaseModel]] = dict(_MODEL_CLASSES)

# --- rules that span fields -------------------------------------------------------------------


def _combination_errors(model_id: str, data: Mapping[str, Any]) -> list[FieldError]:
    """Cross-field rules, on raw input or a dump: defensive about types (fields check those)."""
    errors = _dimension_errors(model_id, data)
    if model_id == _V3:
        errors += _style_errors(data)
    ttl_error = _ttl_error(data)
    if ttl_error:
        errors.append(ttl_error)
    return errors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dimension_errors(model_id: str, data: Mapping[str, Any]) -> list[FieldError]:
    has = {name: name in data for name in ("width", "height")}
    sizes_text = _sizes_text(model_id)
    if not any(has.values()):
        if model_id not in A.DIMENSIONS_REQUIRED:
            return []
        return [
            FieldError(name, None, f"required: width and height, set together; {sizes_text}")
            for name in ("width", "height")
        ]
    if not all(has.values()):
        missing, given = ("height", "width") if has["width"] else ("width", "height")
        return [FieldError(missing, None, f"required together with {given}; {sizes_text}")]
    width, height = data["width"], data["height"]
    sizes = _SIZES[model_id]
    if sizes is not None and _is_int(width) and _is_int(height) and (width, height) not in sizes:
        return [FieldError("width", f"{width}x{height}", sizes_text)]
    return []


def _style_errors(data: Mapping[str, Any]) -> list[FieldError]:
    settings = data.get("providerSettings")
    options = settings.get("ideogram") if isinstance(settings, Mapping) else None
    if not isinstance(options, Mapping):
        return []
    errors: list[FieldError] = []
    prefix = "providerSettings.ideogram"
    if "characterReferenceImagesMask" in options:
        mask = options["characterReferenceImagesMask"]
        refs = options.get("characterReferenceImages")
        if "characterReferenceImages" not in options:
            errors.append(
                FieldError(
                    f"{prefix}.characterReferenceImagesMask",
                    mask,
                    f"only together with {prefix}.characterReferenceImages "
                    "(one mask per character reference image)",
                )
            )
        elif isinstance(mask, list) and isinstance(refs, list) and len(mask) != len(refs):
            errors.append(
                FieldError(
                    f"{prefix}.characterReferenceImagesMask",
                    mask,
                    f"as many masks as characterReferenceImages ({len(refs)})",
                )
            )
    if "styleCode" in options:
        clashes = [name for name in A.STYLE_CODE_EXCLUDES if name in options]
        if clashes:
            errors.append(
                FieldError(
                    f"{prefix}.styleCode",
                    options["styleCode"],
                    f"styleCode cannot be combined with {' or '.join(clashes)} (Ideogram: style "
                    "codes cannot be used with style reference images or a style type); "
                    "remove one of them",
                )
            )
    return errors


def _ttl_error(data: Mapping[str, Any]) -> FieldError | None:
    output_type = data.get("outputType")
    if "ttl" in data and output_type in ("base64Data", "dataURI"):
        return FieldError(
            "ttl",
            data["ttl"],
            f"ttl is only allowed when outputType is URL (or omitted), not {output_type}",
        )
    return None


# --- turning pydantic's errors into FieldErrors -----------------------------------------------

# Names that belong to another model family get a pointer to the right place.
_HINTS: dict[str, dict[str, str]] = {
    model_id: {
        "settings": f"`settings` is only used by {_V4}; for {model_id} these options belong "
        "in providerSettings.ideogram",
        "strength": f"`strength` is only used by {_V4}; for {model_id} use "
        "providerSettings.ideogram.remixStrength (an integer from 1 to 100)",
        "inputs.seedImage": f"`seedImage` is only used by {_V4}; for {model_id} use "
        "inputs.referenceImages (a list of exactly 1 image reference)",
    }
    for model_id in (_V1, _V3)
}
_HINTS[_V4] = {
    "providerSettings": f"{_V4} takes no providerSettings; renderingSpeed and "
    "copyrightDetection belong in settings, and the remix strength is the top-level "
    "strength (0 to 1)",
    "inputs.referenceImages": f"use inputs.seedImage for {_V4} (one image reference, not a list)",
    "remixStrength": f"use strength (a number from 0 to 1 in steps of 0.01) for {_V4}",
}


def _path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` and ``X | None``; return the bare type and the metadata found."""
    metadata: list[Any] = []
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            metadata.extend(annotation.__metadata__)
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation, metadata
            annotation = members[0]
        else:
            return annotation, metadata


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _wire_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _resolve(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[Any, list[Any]]:
    """The annotation and metadata of the thing at ``loc`` (None when it is not in the schema)."""
    annotation: Any = model
    metadata: list[Any] = []
    for part in loc:
        annotation, _ = _unwrap(annotation)
        if isinstance(part, int):
            args = get_args(annotation)
            annotation, metadata = (args[0] if args else None), []
        elif _is_model(annotation) and part in _wire_fields(annotation):
            info = _wire_fields(annotation)[part]
            annotation, metadata = info.annotation, [info]
        else:
            return None, []
    return annotation, metadata


def _allowed(model: type[BaseModel], loc: Sequence[str | int]) -> str:
    annotation, metadata = _resolve(model, loc)
    bare, inner = _unwrap(annotation)
    for item in (*metadata, *inner):
        if isinstance(item, FieldInfo) and item.description:
            return item.description
    if _is_model(bare):
        return "an object with the fields " + ", ".join(_wire_fields(bare))
    return "see the model page"  # every field has a description; pinned by a test


@cache
def _homes(model: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    """Field name -> the dotted paths of the objects that hold a field of that name."""
    found: dict[str, list[str]] = {}

    def walk(current: type[BaseModel], prefix: str) -> None:
        for name, info in _wire_fields(current).items():
            found.setdefault(name, []).append(prefix)
            bare, _ = _unwrap(info.annotation)
            if _is_model(bare):
                walk(bare, f"{prefix}.{name}" if prefix else name)

    walk(model, "")
    return {name: tuple(paths) for name, paths in found.items()}


def _unknown_field_text(model: type[_RemixRequestBase], loc: Sequence[str | int]) -> str:
    path, name, parent_loc = _path(loc), str(loc[-1]), loc[:-1]
    hint = _HINTS[model.MODEL_ID].get(path)
    if hint:
        return hint
    parent_path = _path(parent_loc)
    elsewhere = [p for p in _homes(model).get(name, ()) if p != parent_path]
    if elsewhere:
        where = " or ".join(p or "the top level" for p in elsewhere)
        return f"`{name}` belongs in {where}"
    parent, _ = _unwrap(_resolve(model, parent_loc)[0])
    allowed_here = ", ".join(_wire_fields(parent)) if _is_model(parent) else "none"
    users = [mid for mid, cls in _MODEL_CLASSES.items() if cls is not model and name in _homes(cls)]
    if users:
        return (
            f"unknown field for {model.MODEL_ID} (`{name}` is only used by {', '.join(users)}); "
            f"allowed here: {allowed_here}"
        )
    return f"unknown field; allowed here: {allowed_here}"


def _field_errors(model: type[_RemixRequestBase], exc: ValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in exc.errors(include_url=False, include_context=False):
        loc = error["loc"]
        kind = error["type"]
        if kind == "combination":
            continue  # reported from the raw input by parse_request
        if kind == "extra_forbidden":
            errors.append(FieldError(_path(loc), error["input"], _unknown_field_text(model, loc)))
        elif kind == "missing":
            errors.append(FieldError(_path(loc), None, "required: " + _allowed(model, loc)))
        else:
            errors.append(FieldError(_path(loc), error["input"], _allowed(model, loc)))
    return errors


# --- public entry points ----------------------------------------------------------------------


def parse_request(data: Mapping[str, Any]) -> RemixRequest:
    """Validate one remix request; raise ``InvalidInput`` listing every problem found."""
    if not isinstance(data, Mapping):
        raise InvalidInput([FieldError("request", data, "a JSON object")])
    errors = [
        FieldError(name, data[name], "set by remixq; remove it")
        for name in A.MANAGED_FIELDS
        if name in data
    ]
    model_id = data.get("model")
    model = _MODEL_CLASSES.get(model_id) if isinstance(model_id, str) else None
    if model is None:
        allowed = "one of " + ", ".join(MODEL_IDS)
        errors.append(
            FieldError("model", model_id, allowed if "model" in data else f"required: {allowed}")
        )
        raise InvalidInput(errors)
    body = {key: value for key, value in data.items() if key not in A.MANAGED_FIELDS}
    request: RemixRequest | None = None
    try:
        request = model.model_validate(body)
    except ValidationError as exc:
        errors += _field_errors(model, exc)
    # A field already refused on its own is not refused again for a combination it is in.
    refused = {error.field for error in errors}
    errors += [e for e in _combination_errors(model.MODEL_ID, body) if e.field not in refused]
    if errors or request is None:
        raise InvalidInput(errors)
    return request


def build_task(request: RemixRequest, *, task_uuid: str, webhook_url: str | None) -> dict[str, Any]:
    """The exact ``imageInference`` task object to POST for ``request``.

    ``task_uuid`` is authoritative: the caller stores it before submitting (and should take it
    from ``request.task_uuid`` when the user supplied one). Unset fields are omitted, so the
    provider's defaults apply; nesting and wire names are the model page's.
    """
    if not is_uuid4(task_uuid):
        raise ValueError(f"task_uuid must be a UUID v4, got {task_uuid!r}")
    body = request.model_dump(by_alias=True, exclude_unset=True, mode="json")
    body.pop("taskType", None)
    body.pop("taskUUID", None)
    task: dict[str, Any] = {"taskType": "imageInference", "taskUUID": task_uuid, **body}
    task["deliveryMethod"] = "async"  # ack now, result by webhook or getResponse
    task["includeCost"] = True  # the ledger records the provider's own cost per image
    if webhook_url is not None:
        task["webhookURL"] = webhook_url
    return task


def new_task_uuid() -> str:
    """A fresh taskUUID in the format the pages require (UUID v4)."""
    return str(uuid.uuid4())
