"""The request contract of Ideogram's own "Remix with Ideogram 3.0" API (page 004), validated.

``parse_request`` turns untrusted JSON (a campaign line with ``"provider": "ideogram"``, an API
body) into a ``RemixRequest`` or raises ``InvalidInput`` listing every problem at once, each a
``FieldError`` naming the field (Ideogram's own name, dotted into objects and lists), the bad
value and what is allowed, as the Runware schemas do. ``build_request`` turns a parsed request
into the JSON stored in ``jobs.request``: Ideogram's form fields, each image a data URI or an
https URL (the client turns them into file parts when it calls).

Types are strict (``"3"`` is not an integer, ``1`` is not a boolean, ``null`` is not a value)
and unknown fields are refused: a call is billed, a typo caught here costs nothing. Points the
page leaves open are decided in ``assumptions``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from remixq.errors import FieldError, InvalidInput
from remixq.providers.ideogram import assumptions as A
from remixq.providers.ideogram.images import (
    decode_data_uri,
    decoded_size,
    image_format,
    is_data_uri,
    is_image_url,
    mib,
)
from remixq.providers.refusals import field_path, unwrap
from remixq.providers.runware.schemas.catalog import STYLE_PRESETS, StylePreset
from remixq.providers.runware.schemas.values import check_uuid4
from remixq.url_policy import UrlPolicy

AspectRatio = Literal[
    "1x3", "3x1", "1x2", "2x1", "9x16", "16x9", "10x16", "16x10", "2x3", "3x2", "3x4", "4x3",
    "4x5", "5x4", "1x1",
]  # fmt: skip
RenderingSpeed = Literal["FLASH", "TURBO", "DEFAULT", "QUALITY"]
MagicPrompt = Literal["AUTO", "ON", "OFF"]
StyleType = Literal["AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION"]

_LIMIT = mib(A.IMAGE_MAX_BYTES)
IMAGE_TEXT = (
    f"a JPEG, PNG or WebP image of at most {_LIMIT}: a data:image/...;base64 URI or an https "
    "URL (a campaign file may name a local file)"
)
# The error type whose message is itself the sentence of what is allowed (a size, a format,
# a host the URL policy refuses).
_SAYS_ALLOWED = "ideogram_allowed"


def _allowed_error(text: str) -> PydanticCustomError:
    return PydanticCustomError(_SAYS_ALLOWED, "{text}", {"text": text})


def check_image(value: str, info: ValidationInfo) -> str:
    """A data URI of a JPEG/PNG/WebP image within the size limit, or an https URL the URL
    policy allows (its bytes are checked by the client when it fetches them)."""
    if is_data_uri(value):
        size = decoded_size(value)
        data = decode_data_uri(value) if size is not None else None
        if data is None:
            raise _allowed_error(f"{IMAGE_TEXT}; this data URI is not valid base64")
        if len(data) > A.IMAGE_MAX_BYTES:
            raise _allowed_error(f"an image of at most {_LIMIT}; this one is {mib(len(data))}")
        if image_format(data) is None:
            raise _allowed_error(
                "a JPEG, PNG or WebP image; these bytes are none of them (by their signature)"
            )
        return value
    if not is_image_url(value):
        raise _allowed_error(IMAGE_TEXT)
    policy = (info.context or {}).get("urls")
    if isinstance(policy, UrlPolicy):
        reason = policy.refusal(value)
        if reason is not None:
            raise _allowed_error(reason.replace("http(s)", "https"))
    return value


def _check_resolution(value: str) -> str:
    if value not in A.RESOLUTIONS:
        raise ValueError("not a ResolutionV3 value")
    return value


Image = Annotated[str, AfterValidator(check_image), Field(description=IMAGE_TEXT)]


def _one_of(choices: Any) -> Any:
    return Field(description="one of " + ", ".join(get_args(choices)))


def _int_between(low: int, high: int) -> Any:
    return Field(ge=low, le=high, description=f"an integer from {low} to {high}")


def _text() -> Any:
    return Field(min_length=A.PROMPT_MIN_CHARS, description="a non-empty string")


def _images(low: int, high: int | None, what: str, note: str = "") -> Any:
    if high is None:
        count = f"{low} or more"
    else:
        count = f"exactly {low}" if low == high else f"{low} to {high}"
    plural = "" if high == 1 else "s"
    return Field(
        min_length=low,
        max_length=high,
        description=f"a list of {count} {what}{plural} (each {IMAGE_TEXT}){note}",
    )


class _Strict(BaseModel):
    """Ideogram's field names as they are, strict types, no extras, no nulls, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any) -> Any:
        if value is None:  # optional means "may be omitted"
            raise ValueError("null is not allowed")
        return value


class PaletteMember(_Strict):
    color_hex: Annotated[
        str,
        Field(pattern=A.COLOR_HEX_PATTERN, description='a hex colour "#RRGGBB", e.g. "#1A2B3C"'),
    ]
    color_weight: (
        Annotated[
            float,
            Field(
                ge=A.COLOR_WEIGHT_MIN,
                le=A.COLOR_WEIGHT_MAX,
                description=f"a number from {A.COLOR_WEIGHT_MIN} to {A.COLOR_WEIGHT_MAX}",
            ),
        ]
        | None
    ) = None

    @field_validator("color_weight", mode="before")
    @classmethod
    def _int_is_a_number(cls, value: Any) -> Any:
        # A JSON 1 is a number here (strict mode would refuse an int for a float).
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ColorPalette(_Strict):
    """Either a preset ``name`` or ``members`` (the rule lives in ``combination_errors``)."""

    name: (
        Annotated[
            str,
            AfterValidator(lambda v: _member_of(v, A.COLOR_PALETTE_PRESETS, "preset")),
            Field(description="one of the presets " + ", ".join(A.COLOR_PALETTE_PRESETS)),
        ]
        | None
    ) = None
    members: (
        Annotated[
            list[PaletteMember],
            Field(
                min_length=1,
                max_length=A.COLOR_MEMBERS_MAX,
                description=f"a list of 1 to {A.COLOR_MEMBERS_MAX} objects "
                '{"color_hex": "#RRGGBB", "color_weight": 0.05 to 1 (optional)}',
            ),
        ]
        | None
    ) = None


def _member_of(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"not a {what}")
    return value


class RemixRequest(_Strict):
    """One call of ``POST /v1/ideogram-v3/remix`` (page 004), as a job stores it."""

    task_uuid: (
        Annotated[
            str,
            AfterValidator(check_uuid4),
            Field(
                description="a UUID v4 string (remixq's own key for the job; never sent), "
                "e.g. 6ba7b826-9dad-41d1-80b4-00c04fd430c8"
            ),
        ]
        | None
    ) = Field(default=None, alias=A.TASK_UUID_FIELD)
    image: Image
    prompt: Annotated[str, _text()]
    image_weight: Annotated[int, _int_between(1, 100)] | None = None
    seed: Annotated[int, _int_between(0, 2147483647)] | None = None
    resolution: (
        Annotated[
            str,
            AfterValidator(_check_resolution),
            Field(description="one of the ResolutionV3 values " + ", ".join(A.RESOLUTIONS)),
        ]
        | None
    ) = None
    aspect_ratio: Annotated[AspectRatio, _one_of(AspectRatio)] | None = None
    rendering_speed: Annotated[RenderingSpeed, _one_of(RenderingSpeed)] | None = None
    magic_prompt: Annotated[MagicPrompt, _one_of(MagicPrompt)] | None = None
    negative_prompt: Annotated[str, _text()] | None = None
    num_images: Annotated[int, _int_between(1, 8)] | None = None
    color_palette: ColorPalette | None = None
    style_codes: (
        Annotated[
            list[
                Annotated[
                    str,
                    Field(
                        pattern=r"^[0-9A-Fa-f]{8}$",
                        description="exactly 8 hexadecimal characters, e.g. 1A2B3C4D",
                    ),
                ]
            ],
            Field(
                min_length=1,
                max_length=A.STYLE_CODES_MAX,
                description=f"a list of 1 to {A.STYLE_CODES_MAX} codes of 8 hexadecimal "
                'characters, e.g. ["1A2B3C4D"]',
            ),
        ]
        | None
    ) = None
    style_type: Annotated[StyleType, _one_of(StyleType)] | None = None
    style_preset: (
        Annotated[
            StylePreset,
            Field(description="one of the Ideogram style presets: " + ", ".join(STYLE_PRESETS)),
        ]
        | None
    ) = None
    style_reference_images: (
        Annotated[
            list[Image],
            _images(1, None, "image", f", {_LIMIT} in total"),
        ]
        | None
    ) = None
    character_reference_images: (
        Annotated[
            list[Image], _images(1, A.CHARACTER_REFERENCE_IMAGES_MAX, "character reference image")
        ]
        | None
    ) = None
    character_reference_images_mask: (
        Annotated[
            list[Image],
            _images(
                1,
                A.CHARACTER_REFERENCE_IMAGES_MAX,
                "mask image",
                ", one per character_reference_images item",
            ),
        ]
        | None
    ) = None


# Ideogram's form fields, in the page's order (remixq's taskUUID is none of them).
FIELDS: tuple[str, ...] = tuple(name for name in RemixRequest.model_fields if name != "task_uuid")

# Runware's names for the same things: an Ideogram line using one gets a pointer.
_RUNWARE_NAMES = {
    "positivePrompt": "prompt",
    "negativePrompt": "negative_prompt",
    "numberResults": "num_images",
    "inputs": "image",
    "referenceImages": "image",
    "providerSettings": "the top-level Ideogram fields (style_type, magic_prompt, ...)",
    "model": "nothing: the endpoint is the model (ideogram-v3-remix); remove it",
    "width": "resolution or aspect_ratio",
    "height": "resolution or aspect_ratio",
    "remixStrength": "image_weight",
    "styleCode": "style_codes (a list)",
}


# --- the cross-field rules -----------------------------------------------------------------------


def combination_errors(data: Mapping[str, Any]) -> list[FieldError]:
    """Every rule spanning several fields that ``data`` (raw or dumped) breaks."""
    errors: list[FieldError] = []
    if "resolution" in data and "aspect_ratio" in data:
        errors.append(
            FieldError(
                "aspect_ratio",
                data["aspect_ratio"],
                "either resolution or aspect_ratio, not both (resolution is set)",
            )
        )
    if "style_codes" in data:
        for other in ("style_reference_images", "style_type"):
            if other in data:
                errors.append(
                    FieldError(
                        other,
                        data[other],
                        "not together with style_codes (style codes, style reference images "
                        "and style_type exclude one another)",
                    )
                )
    if "character_reference_images_mask" in data:
        masks = data["character_reference_images_mask"]
        refs = data.get("character_reference_images")
        if "character_reference_images" not in data:
            errors.append(
                FieldError(
                    "character_reference_images_mask",
                    masks,
                    "only together with character_reference_images (one mask per image)",
                )
            )
        elif isinstance(masks, list) and isinstance(refs, list) and len(masks) != len(refs):
            errors.append(
                FieldError(
                    "character_reference_images_mask",
                    masks,
                    f"as many masks as character_reference_images ({len(refs)})",
                )
            )
    palette = data.get("color_palette")
    if isinstance(palette, Mapping):
        has = [key for key in ("name", "members") if key in palette]
        if len(has) != 1:
            errors.append(
                FieldError(
                    "color_palette",
                    dict(palette),
                    'either a preset {"name": ...} or {"members": [...]}, exactly one of them',
                )
            )
    styles = data.get("style_reference_images")
    if isinstance(styles, list):
        sizes = [decoded_size(v) for v in styles if isinstance(v, str) and is_data_uri(v)]
        total = sum(size for size in sizes if size is not None)
        if total > A.STYLE_REFERENCES_MAX_TOTAL_BYTES:
            errors.append(
                FieldError(
                    "style_reference_images",
                    f"{len(styles)} images, {mib(total)} in total",
                    f"style reference images of at most {mib(A.STYLE_REFERENCES_MAX_TOTAL_BYTES)}"
                    " in total",
                )
            )
    return errors


# --- refusals as FieldErrors ---------------------------------------------------------------------


def _fields_of(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _allowed(loc: Sequence[str | int]) -> str:
    """The description of the thing at ``loc``: the sentence a refusal quotes."""
    annotation: Any = RemixRequest
    metadata: list[Any] = []
    for part in loc:
        bare, _ = unwrap(annotation)
        if isinstance(part, int):
            args = get_args(bare)
            annotation, metadata = (args[0] if args else None), []
        elif isinstance(bare, type) and issubclass(bare, BaseModel) and part in _fields_of(bare):
            info = _fields_of(bare)[part]
            annotation, metadata = info.annotation, [info]
        else:
            break
    bare, inner = unwrap(annotation)
    for item in (*metadata, *inner):
        if isinstance(item, FieldInfo) and item.description:
            return item.description
    if isinstance(bare, type) and issubclass(bare, BaseModel):
        return "an object with the fields " + ", ".join(_fields_of(bare))
    return "see Ideogram's Remix page"  # not reached: every field has a description


def _unknown(loc: Sequence[str | int]) -> str:
    name = str(loc[-1])
    if len(loc) == 1 and name in _RUNWARE_NAMES:
        return f"`{name}` is a Runware field; with provider ideogram use {_RUNWARE_NAMES[name]}"
    parents: dict[tuple[str, ...], type[BaseModel]] = {
        (): RemixRequest,
        ("color_palette",): ColorPalette,
        ("color_palette", "members"): PaletteMember,
    }
    parent = parents.get(tuple(part for part in loc[:-1] if isinstance(part, str)))
    allowed = ", ".join(_fields_of(parent)) if parent is not None else "none"
    return f"unknown field for provider ideogram; allowed here: {allowed}"


def _field_errors(exc: ValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in exc.errors(include_url=False, include_context=False):
        loc, kind = error["loc"], error["type"]
        if kind == "extra_forbidden":
            errors.append(FieldError(field_path(loc), error["input"], _unknown(loc)))
        elif kind == _SAYS_ALLOWED:
            errors.append(FieldError(field_path(loc), error["input"], error["msg"]))
        elif kind == "missing":
            errors.append(FieldError(field_path(loc), None, "required: " + _allowed(loc)))
        else:
            errors.append(FieldError(field_path(loc), error["input"], _allowed(loc)))
    return errors


# --- the two entry points ------------------------------------------------------------------------


def parse_request(data: Mapping[str, Any], *, urls: UrlPolicy | None = None) -> RemixRequest:
    """Validate one Ideogram remix request; raise ``InvalidInput`` listing every problem.

    ``urls`` decides which hosts an image URL may name (the default allows any https host).
    """
    if not isinstance(data, Mapping):
        raise InvalidInput([FieldError("request", data, "a JSON object")])
    errors: list[FieldError] = []
    request: RemixRequest | None = None
    try:
        request = RemixRequest.model_validate(dict(data), context={"urls": urls or UrlPolicy()})
    except ValidationError as exc:
        errors += _field_errors(exc)
    refused = {error.field for error in errors}
    errors += [e for e in combination_errors(data) if e.field not in refused]
    if errors or request is None:
        raise InvalidInput(errors)
    return request


def build_request(request: RemixRequest) -> dict[str, Any]:
    """The JSON a job stores for ``request``: Ideogram's form fields as given (unset ones left
    to the API's defaults), without remixq's own ``taskUUID``."""
    body = request.model_dump(exclude_unset=True, exclude={"task_uuid"}, mode="json")
    return {key: body[key] for key in FIELDS if key in body}
