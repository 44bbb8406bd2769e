"""What Runware reports about a task's generations, read one way wherever it comes from.

A webhook body, a getResponse answer and a body replayed from the inbox carry the same items,
and this module is their one reader:

- ``kind_of`` sorts an item into a result, an error or a generation still in progress, by the
  decisions of ``assumptions`` (status words, status-less items);
- ``ResultItem`` and ``ErrorItem`` are the typed, validated forms that ingestion stores; an error
  object is read by ``ProviderError.from_dict`` first, the same reading as the client's errors;
- the envelopes: a webhook body is a bare item, ``{"data": [...]}`` and/or ``{"errors": [...]}``
  (``read_webhook``); a getResponse answer's items become a ``PollResult`` (``read_poll``),
  typed by ``poll_items``, and written back as a webhook envelope by ``poll_envelope`` (the body
  the inbox keeps for a poll, which a replay reads back to the same items).

JSON is read with exact decimals (costs are money) and without NaN or Infinity (``parse_json``).
A cost is money the ledger adds up, so it must be a JSON number between 0 and a ceiling per image
that every reader is given (``max_cost``, REMIXQ_MAX_IMAGE_COST): a body that breaks that rule
is refused (``RefusedPayload``), not merely invalid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from remixq.db import json_dumps, json_loads
from remixq.providers.runware import assumptions as A
from remixq.providers.runware.errors import ProviderError

_BIGINT = 2**63 - 1
# What the ledger's column holds (Numeric(18, 10)): no ceiling given may exceed it.
MAX_STORABLE_COST = Decimal(99999999)
_COST_REFUSED = "cost_refused"  # the error type of a refused cost, told apart in `_typed`


class InvalidPayload(ValueError):
    """A body or an item that is not something the provider sends."""


class RefusedPayload(InvalidPayload):
    """A body in the provider's form that is refused all the same: a cost that is not a JSON
    number, or is negative or above the ceiling per image (kept in the inbox as rejected)."""


class ItemKind(StrEnum):
    RESULT = "result"  # a finished image
    ERROR = "error"  # a failed generation
    PROCESSING = "processing"  # still running (or queued, pending...)


def kind_of(item: Mapping[str, Any]) -> ItemKind:
    """What one item of ``data`` reports (an entry of ``errors`` is always an error)."""
    status = item.get("status")
    if status is None:
        if A.STATUSLESS_ITEM_WITH_ERROR_IS_ERROR and ("code" in item or "error" in item):
            return ItemKind.ERROR
        if A.STATUSLESS_ITEM_WITH_IMAGE_IS_SUCCESS and "imageUUID" in item:
            return ItemKind.RESULT
        return ItemKind.PROCESSING
    if status == A.SUCCESS_STATUS:
        return ItemKind.RESULT
    if status == A.ERROR_STATUS:
        return ItemKind.ERROR
    # A word of NON_TERMINAL_STATUSES, or one not known yet: non-terminal too (assumptions).
    return ItemKind.PROCESSING


class ResultItem(BaseModel):
    """One generated image as Runware reports it (model pages, "Response Parameters")."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    task_uuid: Annotated[UUID, Field(alias="taskUUID")]
    image_uuid: Annotated[UUID, Field(alias="imageUUID")]
    image_url: Annotated[str | None, Field(alias="imageURL", max_length=8192)] = None
    seed: Annotated[StrictInt | None, Field(ge=-_BIGINT, le=_BIGINT)] = None
    nsfw: Annotated[StrictBool | None, Field(alias="NSFWContent")] = None
    cost: Decimal | None = None
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("cost", mode="before")
    @classmethod
    def _plausible_cost(cls, value: Any, info: ValidationInfo) -> Any:
        """A JSON number (an int or an exact decimal as `parse_json` reads it; a float from a
        caller's dict) from 0 to the ceiling `from_item` was given; a string, a bool, NaN or
        an amount out of range is refused, with the value and what is allowed."""
        if value is None:
            return None
        ceiling = min((info.context or {})["max_cost"], MAX_STORABLE_COST)
        numeric = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        amount = Decimal(value) if numeric else None
        if amount is None or not amount.is_finite() or not 0 <= amount <= ceiling:
            raise PydanticCustomError(
                _COST_REFUSED,
                "{value} is refused: a JSON number from 0 to {ceiling} USD per image is allowed",
                {"value": _shown(value), "ceiling": str(ceiling)},
            )
        return amount

    @classmethod
    def from_item(cls, item: Mapping[str, Any], *, max_cost: Decimal) -> ResultItem:
        """`item` validated, its cost at most `max_cost` USD (REMIXQ_MAX_IMAGE_COST)."""
        validated = cls.model_validate(item, context={"max_cost": max_cost})
        # Stored as received, beside the typed columns.
        validated._raw = item if isinstance(item, dict) else dict(item)
        return validated

    @property
    def raw(self) -> dict[str, Any]:
        return self._raw


def _shown(value: Any, limit: int = 60) -> str:
    """`value` as JSON (a string quoted, so that "1e5" is not read as a number), cut short."""
    try:
        text = json_dumps(value)
    except (TypeError, ValueError):  # NaN or Infinity from a caller's float
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ErrorItem(BaseModel):
    """A failed generation, as the job records it."""

    model_config = ConfigDict(populate_by_name=True)

    task_uuid: Annotated[UUID, Field(alias="taskUUID")]
    code: Annotated[str, Field(max_length=100)]
    message: Annotated[str, Field(max_length=4000)]

    @classmethod
    def of(cls, error: ProviderError) -> ErrorItem:
        return cls.model_validate(
            {"taskUUID": error.task_uuid, "code": error.code, "message": error.message}
        )


@dataclass(frozen=True)
class Items:
    """A body's items, typed: its results, its errors and how many generations still run."""

    results: list[ResultItem]
    errors: list[ErrorItem]
    processing: int


@dataclass(frozen=True)
class PollResult:
    """What ``getResponse`` knows about one task right now (results may be partial)."""

    task_uuid: str
    results: list[dict[str, Any]] = field(default_factory=list)  # result items, as received
    errors: list[ProviderError] = field(default_factory=list)  # failed generations: final
    processing: int = 0  # items still processing (or pending, queued...)
    # Errors that may not fail the job: a transient code, or no taskUUID (not tied to the
    # task). The job is asked about again later (its next check), not failed.
    deferred: list[ProviderError] = field(default_factory=list)


def task_key(value: Any) -> str:
    """A taskUUID as compared: UUIDs compare case-insensitively (RFC 4122)."""
    return str(value).lower() if value is not None else ""


def parse_json(body: bytes | str) -> Any:
    """JSON with exact decimals (costs are money), refusing NaN and Infinity."""
    try:
        return json_loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc}") from None


def _sort(
    items: Iterable[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], list[ProviderError], int]:
    results: list[Mapping[str, Any]] = []
    errors: list[ProviderError] = []
    processing = 0
    for item in items:
        kind = kind_of(item)
        if kind is ItemKind.RESULT:
            results.append(item)
        elif kind is ItemKind.ERROR:
            errors.append(ProviderError.from_dict(item))
        else:
            processing += 1
    return results, errors, processing


def _typed(
    results: Sequence[Mapping[str, Any]],
    errors: Sequence[ProviderError],
    processing: int,
    *,
    max_cost: Decimal,
) -> Items:
    try:
        return Items(
            [ResultItem.from_item(item, max_cost=max_cost) for item in results],
            [ErrorItem.of(error) for error in errors],
            processing,
        )
    except ValidationError as exc:
        found = exc.errors()
        # Invalid beats refused: a body that is not the provider's form is invalid whatever
        # its cost; one whose only fault is its cost is refused.
        first = next((e for e in found if e["type"] != _COST_REFUSED), found[0])
        where = ".".join(str(p) for p in first["loc"])
        kind = RefusedPayload if first["type"] == _COST_REFUSED else InvalidPayload
        raise kind(f"{where}: {first['msg']}") from None


def read_webhook(body: bytes, *, max_cost: Decimal) -> Items:
    """A webhook body's items, from any documented shape: a bare result object, the
    ``{"data": [...]}`` envelope, and/or the ``{"errors": [...]}`` one; no result may cost
    more than `max_cost` USD."""
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise InvalidPayload("body must be a JSON object")
    data: Any = [payload]
    errors: Any = []
    if "data" in payload or "errors" in payload:
        data, errors = payload.get("data") or [], payload.get("errors") or []
        if not isinstance(data, list) or not isinstance(errors, list):
            raise InvalidPayload("data and errors must be arrays")
    if not all(isinstance(item, dict) for item in data):
        raise InvalidPayload("each item must be a JSON object")
    if not all(isinstance(item, dict) for item in errors):
        raise InvalidPayload("each error must be a JSON object")
    results, item_errors, processing = _sort(data)
    items = _typed(
        results,
        item_errors + [ProviderError.from_dict(e) for e in errors],
        processing,
        max_cost=max_cost,
    )
    if not items.results and not items.errors and not items.processing:
        raise InvalidPayload("no result or error item in the body")
    return items


def read_poll(
    task_uuid: str, data: Iterable[Mapping[str, Any]], errors: Iterable[ProviderError]
) -> PollResult:
    """One task's part of a getResponse answer: items about other tasks are dropped.

    Only an error about this task (it names its taskUUID) with a permanent code fails it; a
    transient code, or an error naming no task (about the request, the account, the provider's
    state), is ``deferred``: the reconciler asks again later instead of failing the job."""
    key = task_key(task_uuid)
    ours = [item for item in data if task_key(item.get("taskUUID", task_uuid)) == key]
    results, item_errors, processing = _sort(ours)
    item_errors += [e for e in errors if e.task_uuid is None or task_key(e.task_uuid) == key]
    final = [e for e in item_errors if e.task_uuid is not None and not e.transient]
    deferred = [e for e in item_errors if e.task_uuid is None or e.transient]
    return PollResult(task_uuid, [dict(r) for r in results], final, processing, deferred)


def poll_items(poll: PollResult, *, max_cost: Decimal) -> Items:
    """The poll's items, typed as a webhook's are (no result may cost more than `max_cost`)."""
    return _typed(poll.results, poll.errors, poll.processing, max_cost=max_cost)


def poll_envelope(poll: PollResult) -> dict[str, Any]:
    """The poll as a webhook body whose reading (``read_webhook``) gives ``poll_items``."""
    return {
        "data": poll.results,
        "errors": [{**error.raw, "taskUUID": error.task_uuid} for error in poll.errors],
    }
