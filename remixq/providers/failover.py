"""Runware ``ideogram:4@2`` -> Ideogram's own "Remix with Ideogram 3.0": the one mapping table.

A campaign with ``failover: ideogram`` re-runs a Runware job that failed on the provider's side
through the native API (``remixq.failover`` decides when). The same model answers on both
sides (pages 000 and 004), so most fields have an equivalent; every field a stored Runware task
can hold is a row of ``TABLE``, and a field with none, or a value with none, is not dropped:
``to_ideogram`` raises ``NoEquivalent`` naming it, and the job does not fail over.

    Runware (stored task)                          Ideogram (form field)
    model "ideogram:4@2"                           the endpoint (v3 remix); other models: none
    taskType "imageInference"                      the endpoint (nothing sent)
    taskUUID                                       remixq's own key (the new job has its own)
    deliveryMethod, includeCost, webhookURL        remixq's own (the call is synchronous, priced)
    positivePrompt                                 prompt
    negativePrompt                                 negative_prompt
    seed                                           seed (0..2147483647)
    width x height                                 resolution "WxH" (a ResolutionV3 value only)
    numberResults                                  num_images (1..8; 9..20: none)
    inputs.referenceImages (exactly one)           image (a data URI, an https URL, raw base64
                                                   made a data URI; an image UUID, http: none)
    providerSettings.ideogram.renderingSpeed       rendering_speed
    providerSettings.ideogram.magicPrompt          magic_prompt
    providerSettings.ideogram.styleType            style_type (RENDER_3D, ANIME: none)
    providerSettings.ideogram.stylePreset          style_preset
    providerSettings.ideogram.styleCode            style_codes [code]
    providerSettings.ideogram.remixStrength        image_weight
    providerSettings.ideogram.styleReferenceImages style_reference_images
    providerSettings.ideogram.characterReferenceImages      character_reference_images
    providerSettings.ideogram.characterReferenceImagesMask  character_reference_images_mask
    providerSettings.ideogram.colorPalette         color_palette
    outputType "URL"                               the answer's URLs (other output types: none)
    outputFormat, outputQuality, uploadEndpoint, ttl   none (Ideogram chooses; links expire)
    safety.checkContent true                       Ideogram always checks (is_image_safe)
    safety.checkContent false, safety.mode         none

The result is validated by Ideogram's own schema (``parse_request``): a value the native API
would refuse is a ``NoEquivalent`` too, with the schema's words.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from remixq.errors import InvalidInput
from remixq.providers.ideogram import assumptions as IA
from remixq.providers.ideogram.images import image_format, is_data_uri, is_image_url
from remixq.providers.ideogram.schemas import build_request, parse_request

# The one Runware model whose jobs can fail over: the same Ideogram 3.0 Remix (000 <-> 004).
FAILOVER_MODEL: Final = "ideogram:4@2"
# The providers a campaign may fail over to (`campaigns.failover`).
TARGETS: Final = ("ideogram",)
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_IDEOGRAM_STYLE_TYPES: Final = frozenset({"AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION"})


class NoEquivalent(ValueError):
    """A field (or its value) of the Runware task has no equivalent in Ideogram's API."""

    def __init__(self, field: str, value: Any, reason: str):
        self.field, self.value, self.reason = field, value, reason
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}={shown}: {reason}")


Out = dict[str, Any]


def _image(field: str, value: Any) -> str:
    """An image as Ideogram takes it: a data URI or an https URL (raw base64 made a data URI)."""
    if not isinstance(value, str):
        raise NoEquivalent(field, value, "not an image string")
    if is_data_uri(value) or is_image_url(value):
        return value
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        data = b""
    kind = image_format(data) if data else None
    if kind is not None:
        return f"data:{_MIME[kind]};base64,{value}"
    raise NoEquivalent(
        field,
        value,
        "Ideogram takes a data URI or an https URL; a Runware image UUID or an http URL has"
        " no equivalent",
    )


def _images(field: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise NoEquivalent(field, value, "not a list of images")
    return [_image(f"{field}[{i}]", item) for i, item in enumerate(value)]


def _copy(target: str) -> Callable[[str, Any, Out], None]:
    def put(field: str, value: Any, out: Out) -> None:
        del field
        out[target] = value

    return put


def _ignore(field: str, value: Any, out: Out) -> None:
    del field, value, out


def _none(reason: str) -> Callable[[str, Any, Out], None]:
    def refuse(field: str, value: Any, out: Out) -> None:
        del out
        raise NoEquivalent(field, value, reason)

    return refuse


def _model(field: str, value: Any, out: Out) -> None:
    del out
    if value != FAILOVER_MODEL:
        raise NoEquivalent(field, value, f"only {FAILOVER_MODEL} (Ideogram 3.0 Remix) fails over")


def _task_type(field: str, value: Any, out: Out) -> None:
    del out
    if value != "imageInference":
        raise NoEquivalent(field, value, "only imageInference tasks fail over")


def _dimensions(field: str, value: Any, out: Out) -> None:
    width, height = value
    resolution = f"{width}x{height}"
    if resolution not in IA.RESOLUTIONS:
        raise NoEquivalent(
            field, resolution, "Ideogram takes only its ResolutionV3 sizes (e.g. 1024x1024)"
        )
    out["resolution"] = resolution


def _number_results(field: str, value: Any, out: Out) -> None:
    if not isinstance(value, int) or not 1 <= value <= 8:
        raise NoEquivalent(field, value, "Ideogram makes 1 to 8 images per call")
    out["num_images"] = value


def _reference_images(field: str, value: Any, out: Out) -> None:
    images = _images(field, value)
    if len(images) != 1:
        raise NoEquivalent(field, value, "Ideogram remixes exactly one image")
    out["image"] = images[0]


def _style_type(field: str, value: Any, out: Out) -> None:
    if value not in _IDEOGRAM_STYLE_TYPES:
        raise NoEquivalent(
            field, value, "Ideogram's style types are " + ", ".join(sorted(_IDEOGRAM_STYLE_TYPES))
        )
    out["style_type"] = value


def _style_code(field: str, value: Any, out: Out) -> None:
    del field
    out["style_codes"] = [value]


def _image_list(target: str) -> Callable[[str, Any, Out], None]:
    def put(field: str, value: Any, out: Out) -> None:
        out[target] = _images(field, value)

    return put


def _output_type(field: str, value: Any, out: Out) -> None:
    del out
    if value != "URL":
        raise NoEquivalent(field, value, "Ideogram answers with URLs only")


def _check_content(field: str, value: Any, out: Out) -> None:
    del out
    if value is not True:
        raise NoEquivalent(field, value, "Ideogram always checks content (is_image_safe)")


@dataclass(frozen=True)
class Row:
    """One row of the table: a Runware field (dotted), its Ideogram field, and how it maps."""

    runware: str
    ideogram: str
    apply: Callable[[str, Any, Out], None]


_PS = "providerSettings.ideogram."
TABLE: Final[tuple[Row, ...]] = (
    Row("model", "(the endpoint)", _model),
    Row("taskType", "(the endpoint)", _task_type),
    Row("taskUUID", "(remixq's own key)", _ignore),
    Row("deliveryMethod", "(synchronous call)", _ignore),
    Row("includeCost", "(the price table)", _ignore),
    Row("webhookURL", "(synchronous call)", _ignore),
    Row("positivePrompt", "prompt", _copy("prompt")),
    Row("negativePrompt", "negative_prompt", _copy("negative_prompt")),
    Row("seed", "seed", _copy("seed")),
    Row("width x height", "resolution", _dimensions),
    Row("numberResults", "num_images", _number_results),
    Row("inputs.referenceImages", "image", _reference_images),
    Row(_PS + "renderingSpeed", "rendering_speed", _copy("rendering_speed")),
    Row(_PS + "magicPrompt", "magic_prompt", _copy("magic_prompt")),
    Row(_PS + "styleType", "style_type", _style_type),
    Row(_PS + "stylePreset", "style_preset", _copy("style_preset")),
    Row(_PS + "styleCode", "style_codes", _style_code),
    Row(_PS + "remixStrength", "image_weight", _copy("image_weight")),
    Row(
        _PS + "styleReferenceImages",
        "style_reference_images",
        _image_list("style_reference_images"),
    ),
    Row(
        _PS + "characterReferenceImages",
        "character_reference_images",
        _image_list("character_reference_images"),
    ),
    Row(
        _PS + "characterReferenceImagesMask",
        "character_reference_images_mask",
        _image_list("character_reference_images_mask"),
    ),
    Row(_PS + "colorPalette", "color_palette", _copy("color_palette")),
    Row("outputType", "(URLs)", _output_type),
    Row("outputFormat", "(none)", _none("Ideogram chooses the format")),
    Row("outputQuality", "(none)", _none("Ideogram chooses the quality")),
    Row("uploadEndpoint", "(none)", _none("Ideogram uploads nowhere")),
    Row("ttl", "(none)", _none("Ideogram's links expire on their own schedule")),
    Row("safety.checkContent", "(always checked)", _check_content),
    Row("safety.mode", "(none)", _none("Ideogram has no safety modes")),
)
_ROWS: Final = {row.runware: row for row in TABLE}


def _flatten(task: Mapping[str, Any]) -> dict[str, Any]:
    """The task's fields by their dotted names (the table's keys); width and height as one."""
    flat: dict[str, Any] = {}
    for key, value in task.items():
        if key in ("inputs", "safety") and isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        elif key == "providerSettings" and isinstance(value, Mapping):
            for provider, settings in value.items():
                if provider == "ideogram" and isinstance(settings, Mapping):
                    flat.update({_PS + k: v for k, v in settings.items()})
                else:
                    flat[f"providerSettings.{provider}"] = settings
        else:
            flat[key] = value
    if "width" in flat or "height" in flat:
        flat["width x height"] = (flat.pop("width", None), flat.pop("height", None))
    return flat


def to_ideogram(task: Mapping[str, Any]) -> dict[str, Any]:
    """The Ideogram request (as a job stores it) equivalent to the stored Runware ``task``;
    NoEquivalent for the first field (in the table's order; unknown fields last) that has none,
    or for a result the native schema refuses."""
    flat = _flatten(task)
    out: Out = {}
    for row in TABLE:
        if row.runware in flat:
            row.apply(row.runware, flat[row.runware], out)
    for field in flat:
        if field not in _ROWS:
            raise NoEquivalent(field, flat[field], "no Ideogram field takes it")
    try:
        return build_request(parse_request(out))
    except InvalidInput as exc:
        first = exc.errors[0]
        allowed = f"Ideogram refuses it: {first.allowed}"
        raise NoEquivalent(first.field, first.value, allowed) from exc
