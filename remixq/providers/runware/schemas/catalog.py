"""The values the model pages fix: model ids, size tables and the enumerations of each option.

Page numbers refer to ``../shared/spec`` (001 = ``ideogram:1@2``, 000 = ``ideogram:4@2``,
003 = ``ideogram:4@remix``). The request models, the cross-field rules and the refusal texts all
read these names, so a documented value is written here once.
"""

from __future__ import annotations

from typing import Literal, get_args

from remixq.providers.runware import assumptions as A

MODEL_IDS = ("ideogram:1@2", "ideogram:4@2", "ideogram:4@remix")
V1, V3, V4 = MODEL_IDS

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
SIZES: dict[str, tuple[tuple[int, int], ...] | None] = {
    V1: IDEOGRAM_1_SIZES,
    V3: A.V3_SIZES,
    V4: IDEOGRAM_4_SIZES,
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


def sizes_text(model_id: str) -> str:
    """What a refusal says about ``model_id``'s width and height."""
    sizes = SIZES[model_id]
    if sizes is None:
        return "any positive integers (the model page documents no size table)"
    listed = ", ".join(f"{w}x{h}" for w, h in sizes)
    return f"width x height must be one of the documented sizes {listed}"
