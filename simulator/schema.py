"""A tiny declarative schema for Runware task parameters, and the validator that walks it.

Written for the simulator alone (it must not share code with the client it tests): a parameter
table is a tree of ``Param``; ``validate`` returns the first problem as an ``ApiError``, in the
order and with the codes fixed in assumptions A2.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from simulator import assumptions
from simulator.errors import ApiError

Kind = Literal["string", "integer", "number", "boolean", "object", "array"]
Format = Literal["uuid4", "uri", "hex"]

_HEX = re.compile(r"[0-9A-Fa-f]+")


@dataclass(frozen=True)
class Param:
    """One parameter: its JSON kind and the constraints the model page documents."""

    kind: Kind
    required: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_len: int | None = None  # characters of a string, items of an array
    max_len: int | None = None
    step: float | None = None
    fmt: Format | None = None
    properties: Mapping[str, Param] = field(default_factory=dict)
    items: Param | None = None


# A cross-field rule: gets the task, returns an error or None.
Rule = Callable[[Mapping[str, Any]], ApiError | None]


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to validate and price one model's imageInference task."""

    air: str
    name: str
    docs: str
    params: Mapping[str, Param]
    rules: tuple[Rule, ...] = ()

    def doc_link(self, path: str) -> str:
        return doc_link(self.docs, path)


def doc_link(docs: str, path: str) -> str:
    """The link to parameter ``path`` (dotted) on the model page ``docs``."""
    # The model pages anchor each parameter as #request-<dotted path, dashes, lowercase>.
    return f"{docs}#request-{path.replace('.', '-').lower()}"


def validate(task: Mapping[str, Any], spec: ModelSpec) -> ApiError | None:
    """The first problem of ``task`` against ``spec``, or None when it is valid."""
    unknown = _first_unknown(task, spec.params, "")
    if unknown is not None:
        return ApiError(
            code="unsupportedParameter",
            message=f"Parameter '{unknown}' is not supported by model {spec.air}.",
            parameter=unknown,
            documentation=spec.docs,
        )
    missing = _first_missing(task, spec.params, "")
    if missing is not None:
        return ApiError(
            code="missingParameter",
            message=f"Missing required parameter '{missing}' for model {spec.air}.",
            parameter=missing,
            documentation=spec.doc_link(missing),
        )
    for name, param in spec.params.items():
        if name in task:
            problem = _check(task[name], param, name, spec)
            if problem is not None:
                return problem
    for rule in spec.rules:
        problem = rule(task)
        if problem is not None:
            return problem
    return None


def invalid_code(path: str) -> str:
    """``invalidFoo`` for a top-level ``foo``, the generic code for nested ones (A2)."""
    if "." in path:
        return assumptions.NESTED_INVALID
    return "invalid" + path[0].upper() + path[1:]


def is_uuid4(value: str) -> bool:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    # uuid.UUID also accepts braces, urn: prefixes and missing dashes; the API wants the
    # canonical 36-character form.
    return (
        parsed.version == 4
        and parsed.variant == uuid.RFC_4122
        and str(parsed) == value.lower()
        and len(value) == 36
    )


def is_uri(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def _first_unknown(
    value: Mapping[str, Any], params: Mapping[str, Param], prefix: str
) -> str | None:
    for key, item in value.items():
        path = prefix + str(key)
        param = params.get(key)
        if param is None:
            return path
        if param.kind == "object" and isinstance(item, Mapping):
            nested = _first_unknown(item, param.properties, path + ".")
            if nested is not None:
                return nested
    return None


def _first_missing(
    value: Mapping[str, Any], params: Mapping[str, Param], prefix: str
) -> str | None:
    for key, param in params.items():
        path = prefix + key
        if key not in value:
            if param.required:
                return path
        elif param.kind == "object" and isinstance(value[key], Mapping):
            nested = _first_missing(value[key], param.properties, path + ".")
            if nested is not None:
                return nested
    return None


def _check(value: Any, param: Param, path: str, spec: ModelSpec) -> ApiError | None:
    detail = _problem(value, param)
    if detail is None and param.kind == "array" and param.items is not None:
        for index, item in enumerate(value):
            item_detail = _problem(item, param.items)
            if item_detail is not None:
                detail = f"item {index}: {item_detail}"
                break
    if detail is not None:
        return ApiError(
            code=invalid_code(path),
            message=f"Invalid value for '{path}': {detail}",
            parameter=path,
            expected_type=_type_word(param),
            allowed_values=param.choices,
            documentation=spec.doc_link(path),
        )
    if param.kind == "object":
        for key, child in param.properties.items():
            if key in value:
                problem = _check(value[key], child, f"{path}.{key}", spec)
                if problem is not None:
                    return problem
    return None


def _problem(value: Any, param: Param) -> str | None:
    """What is wrong with ``value`` itself (not its children), in words, or None."""
    if not _has_kind(value, param.kind):
        return f"expected {_type_word(param)}, got {_json_type(value)}."
    if param.choices is not None and value not in param.choices:
        return f"{value!r} is not allowed; allowed values: {', '.join(param.choices)}."
    if param.kind in ("integer", "number"):
        low, high = param.minimum, param.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            return f"{value!r} is out of range; it must be {_range_words(low, high)}."
        if param.step is not None:
            steps = value / param.step
            if not math.isclose(steps, round(steps), abs_tol=1e-6):
                return f"{value!r} is not a multiple of {param.step:g}."
    if param.kind in ("string", "array"):
        size = len(value)
        if (param.min_len is not None and size < param.min_len) or (
            param.max_len is not None and size > param.max_len
        ):
            unit = "characters" if param.kind == "string" else "items"
            words = _range_words(param.min_len, param.max_len)
            return f"{size} {unit}; it must have {words} {unit}."
    if param.kind == "string":
        return _format_problem(value, param.fmt)
    return None


def _format_problem(value: str, fmt: Format | None) -> str | None:
    if fmt == "uuid4" and not is_uuid4(value):
        return f"{value!r} is not a UUID v4."
    if fmt == "uri" and not is_uri(value):
        return f"{value!r} is not an absolute http(s) URL."
    if fmt == "hex" and not _HEX.fullmatch(value):
        return f"{value!r} is not hexadecimal."
    return None


def _type_word(param: Param) -> str:
    if param.kind == "array":
        item = param.items.kind if param.items is not None else "value"
        return f"array of {item}s"
    return "float" if param.kind == "number" else param.kind


def _has_kind(value: object, kind: Kind) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, Mapping)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _range_words(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}" if low != high else f"exactly {low:g}"
    if low is not None:
        return f"at least {low:g}"
    return f"at most {high:g}"
