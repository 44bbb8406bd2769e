"""Turning pydantic's validation errors into ``FieldError``s a person can act on.

Each refusal names the dotted wire path, the bad value and what is allowed there, read from the
field's description, so pydantic's own wording never reaches a caller. An unknown field gets a
pointer to where it belongs: another object of the same request, or another model family.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from remixq.errors import FieldError
from remixq.providers.refusals import field_path, unwrap
from remixq.providers.runware.schemas.catalog import V1, V3, V4
from remixq.providers.runware.schemas.models import MODELS, RemixRequestBase
from remixq.providers.runware.schemas.values import URL_HOST_ERROR

# Names that belong to another model family get a pointer to the right place.
_HINTS: dict[str, dict[str, str]] = {
    model_id: {
        "settings": f"`settings` is only used by {V4}; for {model_id} these options belong "
        "in providerSettings.ideogram",
        "strength": f"`strength` is only used by {V4}; for {model_id} use "
        "providerSettings.ideogram.remixStrength (an integer from 1 to 100)",
        "inputs.seedImage": f"`seedImage` is only used by {V4}; for {model_id} use "
        "inputs.referenceImages (a list of exactly 1 image reference)",
    }
    for model_id in (V1, V3)
}
_HINTS[V4] = {
    "providerSettings": f"{V4} takes no providerSettings; renderingSpeed and "
    "copyrightDetection belong in settings, and the remix strength is the top-level "
    "strength (0 to 1)",
    "inputs.referenceImages": f"use inputs.seedImage for {V4} (one image reference, not a list)",
    "remixStrength": f"use strength (a number from 0 to 1 in steps of 0.01) for {V4}",
}


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _wire_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {(info.alias or name): info for name, info in model.model_fields.items()}


def _resolve(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[Any, list[Any]]:
    """The annotation and metadata of the thing at ``loc`` (None when it is not in the schema)."""
    annotation: Any = model
    metadata: list[Any] = []
    for part in loc:
        annotation, _ = unwrap(annotation)
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
    bare, inner = unwrap(annotation)
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
            bare, _ = unwrap(info.annotation)
            if _is_model(bare):
                walk(bare, f"{prefix}.{name}" if prefix else name)

    walk(model, "")
    return {name: tuple(paths) for name, paths in found.items()}


def _unknown_field_text(model: type[RemixRequestBase], loc: Sequence[str | int]) -> str:
    path, name, parent_loc = field_path(loc), str(loc[-1]), loc[:-1]
    hint = _HINTS[model.MODEL_ID].get(path)
    if hint:
        return hint
    parent_path = field_path(parent_loc)
    elsewhere = [p for p in _homes(model).get(name, ()) if p != parent_path]
    if elsewhere:
        where = " or ".join(p or "the top level" for p in elsewhere)
        return f"`{name}` belongs in {where}"
    parent, _ = unwrap(_resolve(model, parent_loc)[0])
    allowed_here = ", ".join(_wire_fields(parent)) if _is_model(parent) else "none"
    users = [mid for mid, cls in MODELS.items() if cls is not model and name in _homes(cls)]
    if users:
        return (
            f"unknown field for {model.MODEL_ID} (`{name}` is only used by {', '.join(users)}); "
            f"allowed here: {allowed_here}"
        )
    return f"unknown field; allowed here: {allowed_here}"


def field_errors(model: type[RemixRequestBase], exc: ValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in exc.errors(include_url=False, include_context=False):
        loc = error["loc"]
        kind = error["type"]
        if kind == "combination":
            continue  # reported from the raw input by parse_request
        if kind == "extra_forbidden":
            errors.append(
                FieldError(field_path(loc), error["input"], _unknown_field_text(model, loc))
            )
        elif kind == URL_HOST_ERROR:  # its message says what is allowed, and why
            errors.append(FieldError(field_path(loc), error["input"], error["msg"]))
        elif kind == "missing":
            errors.append(FieldError(field_path(loc), None, "required: " + _allowed(model, loc)))
        else:
            errors.append(FieldError(field_path(loc), error["input"], _allowed(model, loc)))
    return errors
