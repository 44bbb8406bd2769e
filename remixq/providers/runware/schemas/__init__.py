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

One concern per module: ``catalog`` (model ids, size tables, enumerations), ``values``
(image references, UUIDs, URLs), ``fields`` (the strict base and field helpers), ``rules``
(cross-field rules), ``models`` (the request models), ``refusals`` (pydantic's errors as
``FieldError``s), ``parse`` and ``task`` (the two entry points).
"""

from remixq.providers.runware.schemas.catalog import (
    IDEOGRAM_1_SIZES,
    IDEOGRAM_4_SIZES,
    MODEL_IDS,
    STYLE_PRESETS,
)
from remixq.providers.runware.schemas.models import (
    MODELS,
    Ideogram1Remix,
    Ideogram3Remix,
    Ideogram4Remix,
    RemixRequest,
)
from remixq.providers.runware.schemas.parse import parse_request
from remixq.providers.runware.schemas.task import build_task
from remixq.providers.runware.schemas.values import (
    IMAGE_REFERENCE_TEXT,
    is_http_url,
    is_image_reference,
    is_uuid4,
)

__all__ = [
    "IDEOGRAM_1_SIZES",
    "IDEOGRAM_4_SIZES",
    "IMAGE_REFERENCE_TEXT",
    "MODELS",
    "MODEL_IDS",
    "STYLE_PRESETS",
    "Ideogram1Remix",
    "Ideogram3Remix",
    "Ideogram4Remix",
    "RemixRequest",
    "build_task",
    "is_http_url",
    "is_image_reference",
    "is_uuid4",
    "parse_request",
]
