"""The rules that span several fields: width with height, styleCode's exclusions, ttl's output.

They read raw input as well as a model's dump, so they are defensive about types (the fields
check those): ``parse_request`` runs them on the raw request to report a combination even when
one of its fields was refused too, and the models run them after their own validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remixq.errors import FieldError
from remixq.providers.runware import assumptions as A
from remixq.providers.runware.schemas.catalog import SIZES, V3, sizes_text


def combination_errors(model_id: str, data: Mapping[str, Any]) -> list[FieldError]:
    """Every cross-field rule ``data`` breaks for ``model_id``."""
    errors = _dimension_errors(model_id, data)
    if model_id == V3:
        errors += _style_errors(data)
    ttl_error = _ttl_error(data)
    if ttl_error:
        errors.append(ttl_error)
    return errors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dimension_errors(model_id: str, data: Mapping[str, Any]) -> list[FieldError]:
    has = {name: name in data for name in ("width", "height")}
    text = sizes_text(model_id)
    if not any(has.values()):
        if model_id not in A.DIMENSIONS_REQUIRED:
            return []
        return [
            FieldError(name, None, f"required: width and height, set together; {text}")
            for name in ("width", "height")
        ]
    if not all(has.values()):
        missing, given = ("height", "width") if has["width"] else ("width", "height")
        return [FieldError(missing, None, f"required together with {given}; {text}")]
    width, height = data["width"], data["height"]
    sizes = SIZES[model_id]
    if sizes is not None and _is_int(width) and _is_int(height) and (width, height) not in sizes:
        return [FieldError("width", f"{width}x{height}", text)]
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
