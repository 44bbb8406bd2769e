"""The three request models, one per Ideogram Remix model, and the nested objects they hold.

Every documented parameter with its type, range, allowed values and nesting, nothing else; the
fields are built from ``fields`` so that each carries the sentence a refusal quotes.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self, TypeAlias

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from remixq.providers.runware import assumptions as A
from remixq.providers.runware.schemas.catalog import (
    STYLE_PRESETS,
    V1,
    V3,
    V4,
    MagicPrompt,
    OutputFormat,
    OutputType,
    RenderingSpeed,
    SafetyMode,
    StylePreset,
    StyleType,
)
from remixq.providers.runware.schemas.fields import (
    BOOL,
    ImageReference,
    Strict,
    dimension,
    image_list,
    int_between,
    one_of,
    text_between,
)
from remixq.providers.runware.schemas.rules import combination_errors
from remixq.providers.runware.schemas.values import (
    check_http_url,
    check_strength_step,
    check_uuid4,
)

_HEX8_PATTERN = r"^[0-9A-Fa-f]{8}$"

# --- nested objects ---------------------------------------------------------------------------


class Safety(Strict):
    """``safety`` on 1.0 and 3.0 (000, 001): checkContent and mode."""

    check_content: Annotated[bool, BOOL] | None = None
    mode: Annotated[SafetyMode, one_of(SafetyMode)] | None = None


class SafetyCheckOnly(Strict):
    """``safety`` on 4.0 (003 documents only checkContent)."""

    check_content: Annotated[bool, BOOL] | None = None


class ReferenceInputs(Strict):
    """``inputs`` on 1.0 and 3.0: the one source image."""

    reference_images: Annotated[
        list[ImageReference], image_list(A.REFERENCE_IMAGES_MIN, A.REFERENCE_IMAGES_MAX)
    ]


class SeedInputs(Strict):
    """``inputs`` on 4.0: the source image is a single string (003)."""

    seed_image: ImageReference


class Ideogram1Options(Strict):
    """``providerSettings.ideogram`` on 1.0 (001)."""

    magic_prompt: Annotated[MagicPrompt, one_of(MagicPrompt)] | None = None
    remix_strength: Annotated[int, int_between(1, 100)] | None = None
    rendering_speed: Annotated[RenderingSpeed, one_of(RenderingSpeed)] | None = None
    style_reference_images: (
        Annotated[
            list[ImageReference],
            image_list(A.STYLE_REFERENCE_IMAGES_MIN, A.STYLE_REFERENCE_IMAGES_MAX),
        ]
        | None
    ) = None
    style_type: Annotated[StyleType, one_of(StyleType)] | None = None


class Ideogram3Options(Ideogram1Options):
    """``providerSettings.ideogram`` on 3.0 (000): 1.0's options plus characters and styles."""

    character_reference_images: (
        Annotated[
            list[ImageReference],
            image_list(A.CHARACTER_REFERENCE_IMAGES_MIN, A.CHARACTER_REFERENCE_IMAGES_MAX),
        ]
        | None
    ) = None
    character_reference_images_mask: (
        Annotated[
            list[ImageReference],
            image_list(
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


class Ideogram1ProviderSettings(Strict):
    ideogram: Ideogram1Options


class Ideogram3ProviderSettings(Strict):
    ideogram: Ideogram3Options


class Ideogram4Settings(Strict):
    """``settings`` on 4.0 (003)."""

    rendering_speed: Annotated[RenderingSpeed, one_of(RenderingSpeed)] | None = None
    copyright_detection: Annotated[bool, BOOL] | None = None


# --- the three requests -----------------------------------------------------------------------


class RemixRequestBase(Strict):
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
            AfterValidator(check_uuid4),
            Field(description="a UUID v4 string, e.g. 6ba7b826-9dad-41d1-80b4-00c04fd430c8"),
        ]
        | None
    ) = Field(default=None, alias="taskUUID")
    output_type: Annotated[OutputType, one_of(OutputType)] | None = None
    output_format: Annotated[OutputFormat, one_of(OutputFormat)] | None = None
    output_quality: Annotated[int, int_between(20, 99)] | None = None
    upload_endpoint: (
        Annotated[str, AfterValidator(check_http_url), Field(description="an http(s) URL")] | None
    ) = None
    ttl: (
        Annotated[
            int,
            Field(ge=60, description="an integer of at least 60 (seconds), with outputType URL"),
        ]
        | None
    ) = None
    number_results: Annotated[int, int_between(1, 20)] | None = None

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        # Field-level rules ran already; these span several fields. parse_request runs the
        # same checks on the raw input so they are reported even when a field failed too.
        problems = combination_errors(
            self.MODEL_ID, self.model_dump(by_alias=True, exclude_unset=True)
        )
        if problems:
            detail = "; ".join(str(problem) for problem in problems)
            raise PydanticCustomError("combination", "{detail}", {"detail": detail})
        return self


class Ideogram1Remix(RemixRequestBase):
    """``ideogram:1@2``, Ideogram 1.0 Remix (001)."""

    MODEL_ID: ClassVar[str] = V1

    model: Literal["ideogram:1@2"]
    positive_prompt: Annotated[str, text_between(1, 2000)]
    negative_prompt: Annotated[str, text_between(1, 2000)] | None = None
    width: Annotated[int, dimension(V1)] | None = None
    height: Annotated[int, dimension(V1)] | None = None
    inputs: ReferenceInputs
    provider_settings: Ideogram1ProviderSettings | None = None
    safety: Safety | None = None


class Ideogram3Remix(RemixRequestBase):
    """``ideogram:4@2``, Ideogram 3.0 Remix (000)."""

    MODEL_ID: ClassVar[str] = V3

    model: Literal["ideogram:4@2"]
    positive_prompt: Annotated[str, text_between(1, 2000)]
    negative_prompt: Annotated[str, text_between(1, 2000)] | None = None
    width: Annotated[int, dimension(V3)] | None = None
    height: Annotated[int, dimension(V3)] | None = None
    inputs: ReferenceInputs
    provider_settings: Ideogram3ProviderSettings | None = None
    safety: Safety | None = None


class Ideogram4Remix(RemixRequestBase):
    """``ideogram:4@remix``, Ideogram 4.0 Remix (003; "coming-soon" on the provider side)."""

    MODEL_ID: ClassVar[str] = V4

    model: Literal["ideogram:4@remix"]
    positive_prompt: Annotated[str, text_between(2, 2048)]
    width: Annotated[int, dimension(V4)] | None = None
    height: Annotated[int, dimension(V4)] | None = None
    inputs: SeedInputs
    strength: (
        Annotated[
            float,
            Field(ge=0, le=1, description="a number from 0 to 1 in steps of 0.01"),
            AfterValidator(check_strength_step),
        ]
        | None
    ) = None
    settings: Ideogram4Settings | None = None
    safety: SafetyCheckOnly | None = None


RemixRequest: TypeAlias = Ideogram1Remix | Ideogram3Remix | Ideogram4Remix

# Model id -> its request model: what parse_request dispatches on.
MODELS: dict[str, type[Ideogram1Remix] | type[Ideogram3Remix] | type[Ideogram4Remix]] = {
    V1: Ideogram1Remix,
    V3: Ideogram3Remix,
    V4: Ideogram4Remix,
}
