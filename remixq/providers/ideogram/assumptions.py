"""Every point Ideogram's own Remix API leaves open, decided once, in one place.

The contract is page 004 of ``../shared/spec`` ("Remix with Ideogram 3.0", ``POST
/v1/ideogram-v3/remix``) and ``runware-platform.md`` section 7 (the same endpoint from its
OpenAPI copy, with sources). Each constant says what was decided where they are silent or
disagree; the schema, the client and the provider seam import these names instead of repeating
the numbers. The simulator makes the same decisions on its side (``simulator/assumptions.py``,
the "Ideogram" entries).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

# --- Identity ---------------------------------------------------------------------------------

# The API names no model in a request (the endpoint is the model). Jobs, prices and reports need
# one name: this one, distinct from every Runware model id ("ideogram:4@2" is Runware's).
MODEL_ID: Final = "ideogram-v3-remix"

# The API has no task id nor idempotency key. A job still gets a taskUUID (a UUID v4, our own
# key, never sent); a line may name its own under ``taskUUID``, as a Runware line may.
TASK_UUID_FIELD: Final = "taskUUID"

# --- Images -----------------------------------------------------------------------------------

# 004 and the OpenAPI copy say "max size 10MB"; the newer .md page says 25 MB (platform s.7).
# The lower bound is the one every version accepts. "MB" is read as MiB, the reading that
# accepts the most files without exceeding either wording by more than 5%. The same bound caps
# the total of the style reference images ("maximum total size 10MB across all style
# references").
IMAGE_MAX_BYTES: Final = 10 * 1024 * 1024
STYLE_REFERENCES_MAX_TOTAL_BYTES: Final = 10 * 1024 * 1024

# "only JPEG, WebP and PNG formats are supported": a file's format is read from its first
# bytes (its signature), not from a name or a declared MIME type, which may lie.
IMAGE_FORMATS: Final = ("JPEG", "PNG", "WEBP")
MIME_TYPES: Final = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

# The API takes files. A job stores each image as a data URI (a local path inlined by the
# producer) or an https URL, fetched by remixq's client when it calls (through the URL policy,
# at most IMAGE_MAX_BYTES, within FETCH_TIMEOUT seconds). Plain http is refused: a stored job
# must not make the worker fetch over a channel anyone on the way can rewrite.
IMAGE_URL_SCHEMES: Final = ("https",)
FETCH_TIMEOUT: Final = 30.0

# section 7: "character_reference_images[] (1 supported)"; the masks go one per reference
# image. Style references have no documented count: only their total size is bounded.
CHARACTER_REFERENCE_IMAGES_MAX: Final = 1

# --- Fields -----------------------------------------------------------------------------------

# 004 gives prompt and negative_prompt no length. They must be non-empty (an empty prompt is no
# prompt); the length is bounded by the request size only (a campaign line, an API body).
PROMPT_MIN_CHARS: Final = 1

# 004 names the enum (ResolutionV3) without listing it; these are the values of Ideogram's
# published ResolutionV3 enum (developer.ideogram.ai, "Remix with Ideogram 3.0").
RESOLUTIONS: Final = (
    "512x1536", "576x1408", "576x1472", "576x1536", "640x1344", "640x1408", "640x1472",
    "640x1536", "704x1152", "704x1216", "704x1280", "704x1344", "704x1408", "704x1472",
    "736x1312", "768x1088", "768x1216", "768x1280", "768x1344", "800x1280", "832x960",
    "832x1024", "832x1088", "832x1152", "832x1216", "832x1248", "864x1152", "896x960",
    "896x1024", "896x1088", "896x1120", "896x1152", "960x832", "960x896", "960x1024",
    "960x1088", "1024x832", "1024x896", "1024x960", "1024x1024", "1088x768", "1088x832",
    "1088x896", "1088x960", "1120x896", "1152x704", "1152x832", "1152x864", "1152x896",
    "1216x704", "1216x768", "1216x832", "1248x832", "1280x704", "1280x768", "1280x800",
    "1312x736", "1344x640", "1344x704", "1344x768", "1408x576", "1408x640", "1408x704",
    "1472x576", "1472x640", "1472x704", "1536x512", "1536x576", "1536x640",
)  # fmt: skip

# color_palette: 004 says "EITHER ... one of the presets (name) or ... hexadecimal
# representations of the color with optional weights (members)" without listing the presets,
# the hex form or the weight range. These are Ideogram's published ColorPalettePresetName
# values, a "#RRGGBB" hex (its pattern), and a weight from 0.05 to 1 (its bounds; default 0.5).
# Members are bounded to 1..16: a palette is a handful of colours, and the form field must stay
# small.
COLOR_PALETTE_PRESETS: Final = (
    "EMBER", "FRESH", "JUNGLE", "MAGIC", "MELON", "MOSAIC", "PASTEL", "ULTRAMARINE",
)  # fmt: skip
COLOR_HEX_PATTERN: Final = r"^#[0-9A-Fa-f]{6}$"
COLOR_WEIGHT_MIN: Final = 0.05
COLOR_WEIGHT_MAX: Final = 1.0
COLOR_MEMBERS_MAX: Final = 16

# style_codes: "a list of 8 character hexadecimal codes"; no count. 1..16, for the same reason.
STYLE_CODES_MAX: Final = 16

# --- The multipart form -----------------------------------------------------------------------

# 004 documents fields, not their encoding in the form: scalars are sent as text, a list of
# strings (style_codes) as the field repeated, the color_palette object as its JSON text, and
# each image as a file part under its field name (a list: one part per image, the name repeated).
LIST_FORM_FIELDS: Final = ("style_codes",)
JSON_FORM_FIELDS: Final = ("color_palette",)
FILE_FIELDS: Final = (
    "image",
    "style_reference_images",
    "character_reference_images",
    "character_reference_images_mask",
)

# --- Answers ----------------------------------------------------------------------------------

# 004: 403 "Not authorized to generate an image."; the sibling generate-v3 page lists 401 for the
# same case (section 7). Both are permanent: 401 is Unauthorized, 403 Forbidden.
# The bodies of 400/401/403/429 are "Any type": the client quotes an "error" or "message"
# string when the body is a JSON object with one, else at most ERROR_TEXT_CHARS of the text.
ERROR_TEXT_CHARS: Final = 300

# Retry-After is documented nowhere (section 10); honoured when present, as for Runware.
HONOUR_RETRY_AFTER: Final = True

# 5xx are not documented at all; read as a passing failure of the provider (transient), as 429.

# --- Prices -----------------------------------------------------------------------------------

# The API returns no cost. The price table's defaults are Ideogram's public API prices per
# output image for Ideogram 3.0 by rendering speed (Remix priced as Generate): FLASH is not on
# the public list, and is assumed at half of TURBO. Every cost of this provider is an estimate.
SPEEDS: Final = ("FLASH", "TURBO", "DEFAULT", "QUALITY")
DEFAULT_SPEED: Final = "DEFAULT"
DEFAULT_PRICES: Final = {
    "FLASH": Decimal("0.015"),
    "TURBO": Decimal("0.03"),
    "DEFAULT": Decimal("0.06"),
    "QUALITY": Decimal("0.09"),
}
