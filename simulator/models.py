"""Parameter tables of the three Ideogram Remix models, transcribed from ../shared/spec.

``001_*`` Ideogram 1.0 Remix (``ideogram:1@2``), ``000_*`` Ideogram 3.0 Remix (``ideogram:4@2``),
``003_*`` Ideogram 4.0 Remix (``ideogram:4@remix``). Read from the spec on purpose, not from the
remixq client: the simulator is there to catch the client's mistakes, not to repeat them.
Points the pages leave open are decided in assumptions A3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simulator import assumptions
from simulator.errors import ApiError
from simulator.schema import ModelSpec, Param, Rule, doc_link, validate

OUTPUT_TYPES = ("URL", "base64Data", "dataURI")
OUTPUT_FORMATS = ("JPG", "PNG", "WEBP")
DELIVERY_METHODS = ("sync", "async")
RENDERING_SPEEDS = ("TURBO", "DEFAULT", "QUALITY")
MAGIC_PROMPT = ("AUTO", "ON", "OFF")
STYLE_TYPES = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "RENDER_3D", "ANIME", "FICTION")

# The 3.0 page says "Allowed values 62 values" without listing them; these are Ideogram's 62
# style presets (developer.ideogram.ai StylePresetV3), which the page's examples draw from.
STYLE_PRESETS = (
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
)  # fmt: skip

# "Compatibility & Validation" tables of the 1.0 and 4.0 pages (width, height).
DIMENSIONS_1K: frozenset[tuple[int, int]] = frozenset(
    {
        (768, 1232), (1232, 768), (720, 1280), (1280, 720), (1152, 768), (832, 1248),
        (1024, 768), (768, 1024), (1024, 1024), (512, 1536), (1536, 512),
    }
)  # fmt: skip
DIMENSIONS_2K: frozenset[tuple[int, int]] = frozenset(
    {
        (2048, 2048), (1440, 2880), (2880, 1440), (1664, 2496), (2496, 1664), (1792, 2240),
        (2240, 1792), (1440, 2560), (2560, 1440), (1600, 2560), (2560, 1600), (1728, 2304),
        (2304, 1728), (1296, 3168), (3168, 1296), (1152, 2944), (2944, 1152), (1248, 3328),
        (3328, 1248), (1280, 3072), (3072, 1280), (1024, 3072), (3072, 1024),
    }
)  # fmt: skip


def _images(min_items: int | None = None, max_items: int | None = None, **kw: Any) -> Param:
    # Images are "UUID, URL, Data URI, or Base64": any non-empty string.
    return Param(
        "array", min_len=min_items, max_len=max_items, items=Param("string", min_len=1), **kw
    )


def _platform(safety: Mapping[str, Param]) -> dict[str, Param]:
    """The "API Options" block, the same on every page except for ``safety``."""
    return {
        "taskType": Param("string", required=True, choices=("imageInference",)),
        "taskUUID": Param("string", required=True, fmt="uuid4"),
        "model": Param("string", required=True),
        "outputType": Param("string", choices=OUTPUT_TYPES),
        "outputFormat": Param("string", choices=OUTPUT_FORMATS),
        "outputQuality": Param("integer", minimum=20, maximum=99),
        "webhookURL": Param("string", fmt="uri"),
        "deliveryMethod": Param("string", choices=DELIVERY_METHODS),
        "uploadEndpoint": Param("string", fmt="uri"),
        "safety": Param("object", properties=safety),
        "ttl": Param("integer", minimum=60),
        "includeCost": Param("boolean"),
        "numberResults": Param("integer", minimum=1, maximum=20),
    }


_SAFETY_FULL = {
    "checkContent": Param("boolean"),
    "mode": Param("string", choices=("none", "fast")),
}
_SAFETY_CHECK_ONLY = {"checkContent": Param("boolean")}


def _remix_params(ideogram: Mapping[str, Param], side: Param) -> dict[str, Param]:
    """The 1.0 and 3.0 pages' table: one reference image, prompts of up to 2000 characters,
    Ideogram's own settings under ``providerSettings.ideogram``; ``side`` is width and height."""
    return {
        **_platform(_SAFETY_FULL),
        "inputs": Param(
            "object", required=True, properties={"referenceImages": _images(1, 1, required=True)}
        ),
        "positivePrompt": Param("string", required=True, min_len=1, max_len=2000),
        "negativePrompt": Param("string", min_len=1, max_len=2000),
        "width": side,
        "height": side,
        "providerSettings": Param(
            "object", properties={"ideogram": Param("object", properties=ideogram)}
        ),
    }


def _dimension_rule(air: str, docs: str, allowed: frozenset[tuple[int, int]]) -> Rule:
    def rule(task: Mapping[str, Any]) -> ApiError | None:
        pair = (task["width"], task["height"])
        if pair in allowed:
            return None
        listed = [f"{w}x{h}" for w, h in sorted(allowed)]
        return ApiError(
            code=assumptions.UNSUPPORTED_DIMENSIONS,
            message=f"Dimensions {pair[0]}x{pair[1]} are not supported by model {air}; "
            f"width and height must be one of: {', '.join(listed)}.",
            parameter="width",
            allowed_values=listed,
            documentation=docs,
        )

    return rule


def _character_mask_rule(docs: str) -> Rule:
    path = "providerSettings.ideogram.characterReferenceImagesMask"

    def rule(task: Mapping[str, Any]) -> ApiError | None:
        ideogram = task.get("providerSettings", {}).get("ideogram", {})
        if "characterReferenceImagesMask" not in ideogram:
            return None
        masks = len(ideogram["characterReferenceImagesMask"])
        images = len(ideogram.get("characterReferenceImages", []))
        if masks == images:
            return None
        return ApiError(
            code=assumptions.NESTED_INVALID,
            message=f"Invalid value for '{path}': {masks} mask(s) for {images} character "
            "reference image(s); the counts must match.",
            parameter=path,
            documentation=doc_link(docs, path),
        )

    return rule


def _ideogram_1() -> ModelSpec:
    air, docs = "ideogram:1@2", "https://runware.ai/docs/models/ideogram-1-0-remix"
    ideogram = {
        "magicPrompt": Param("string", choices=MAGIC_PROMPT),
        "remixStrength": Param("integer", minimum=1, maximum=100),
        "renderingSpeed": Param("string", choices=RENDERING_SPEEDS),
        "styleReferenceImages": _images(1, 4),
        "styleType": Param("string", choices=STYLE_TYPES),
    }
    params = _remix_params(ideogram, Param("integer", required=True))
    return ModelSpec(
        air, "Ideogram 1.0 Remix", docs, params, (_dimension_rule(air, docs, DIMENSIONS_1K),)
    )


def _ideogram_3() -> ModelSpec:
    air, docs = "ideogram:4@2", "https://runware.ai/docs/models/ideogram-3-0-remix"
    ideogram = {
        "characterReferenceImages": _images(1, 1),
        "characterReferenceImagesMask": _images(1, 1),
        "magicPrompt": Param("string", choices=MAGIC_PROMPT),
        "remixStrength": Param("integer", minimum=1, maximum=100),
        "renderingSpeed": Param("string", choices=RENDERING_SPEEDS),
        "styleCode": Param("string", min_len=8, max_len=8, fmt="hex"),
        "stylePreset": Param("string", choices=STYLE_PRESETS),
        "styleReferenceImages": _images(1, 4),
        "styleType": Param("string", choices=STYLE_TYPES),
    }
    # No dimension table on the 3.0 page (assumptions A3): any positive sizes.
    params = _remix_params(ideogram, Param("integer", required=True, minimum=1))
    return ModelSpec(air, "Ideogram 3.0 Remix", docs, params, (_character_mask_rule(docs),))


def _ideogram_4() -> ModelSpec:
    air, docs = "ideogram:4@remix", "https://runware.ai/docs/models/ideogram-4-0-remix"
    settings = {
        "copyrightDetection": Param("boolean"),
        "renderingSpeed": Param("string", choices=RENDERING_SPEEDS),
    }
    params = {
        **_platform(_SAFETY_CHECK_ONLY),
        "inputs": Param(
            "object",
            required=True,
            properties={"seedImage": Param("string", required=True, min_len=1)},
        ),
        "positivePrompt": Param("string", required=True, min_len=2, max_len=2048),
        "width": Param("integer", required=True),
        "height": Param("integer", required=True),
        "strength": Param("number", minimum=0, maximum=1, step=0.01),
        "settings": Param("object", properties=settings),
    }
    return ModelSpec(
        air, "Ideogram 4.0 Remix", docs, params, (_dimension_rule(air, docs, DIMENSIONS_2K),)
    )


def model_specs() -> dict[str, ModelSpec]:
    """The supported models by AIR id."""
    return {spec.air: spec for spec in (_ideogram_1(), _ideogram_3(), _ideogram_4())}


def rendering_speed(task: Mapping[str, Any]) -> str:
    """The task's rendering speed, wherever its model keeps it (4.0: ``settings``)."""
    if task.get("model") == "ideogram:4@remix":
        speed = task.get("settings", {}).get("renderingSpeed")
    else:
        speed = task.get("providerSettings", {}).get("ideogram", {}).get("renderingSpeed")
    return speed if isinstance(speed, str) else "DEFAULT"


def safety_checked(task: Mapping[str, Any]) -> bool:
    """Whether the result must carry ``NSFWContent`` (checkContent, or mode ``fast``)."""
    safety = task.get("safety", {})
    return safety.get("checkContent") is True or safety.get("mode") == "fast"


def check_image_inference(
    task: Mapping[str, Any], specs: Mapping[str, ModelSpec]
) -> ApiError | None:
    """The first problem of an imageInference task, the model being looked up first."""
    model = task.get("model")
    if "model" not in task:
        return ApiError(
            code="missingParameter",
            message="Missing required parameter 'model'.",
            parameter="model",
        )
    spec = specs.get(model) if isinstance(model, str) else None
    if spec is None:
        return ApiError(
            code="invalidModel",
            message=f"Model {model!r} is not available; allowed values: {', '.join(specs)}.",
            parameter="model",
            allowed_values=tuple(specs),
        )
    return validate(task, spec)
