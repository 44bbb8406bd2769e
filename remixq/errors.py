"""Errors the domain raises for bad input.

Every refusal names the field, the value and what is allowed, so that the HTTP edge can answer
with a JSON 4xx and the CLI with one readable line: never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_MAX_VALUE_CHARS = 60


def _short(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


@dataclass(frozen=True)
class FieldError:
    """One refused field: where it is, what it held, and what is allowed there."""

    field: str
    value: Any
    allowed: str
    location: str | None = None  # e.g. "line 3" of a campaign file

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.field}: {_short(self.value)} is not allowed; {self.allowed}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "field": self.field,
            "value": _jsonable(self.value),
            "allowed": self.allowed,
        }
        if self.location:
            out["location"] = self.location
        return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value if not isinstance(value, str) or len(value) <= 200 else value[:200] + "..."
    return _short(value)


class InvalidInput(ValueError):
    """Input refused before anything was stored or sent."""

    def __init__(self, errors: Iterable[FieldError]):
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        if not self.errors:
            return "invalid input"
        first = str(self.errors[0])
        more = len(self.errors) - 1
        return first if not more else f"{first} (and {more} more error{'s' * (more > 1)})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": "invalid_input",
            "message": str(self),
            "errors": [e.as_dict() for e in self.errors],
        }


class UnknownCampaign(InvalidInput):
    """A campaign id that names no campaign: an HTTP edge answers 404, the CLI one line."""

    def __init__(self, campaign_id: Any, field: str = "CAMPAIGN"):
        self.campaign_id = campaign_id
        super().__init__([FieldError(field, campaign_id, "the id of an existing campaign")])
