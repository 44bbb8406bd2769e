"""A campaign's results as people look at them (the dashboard): pages of its jobs with their
images, filtered by status, model and variant values; the axes of its variants and their
values; one axis's values compared side by side; the models each campaign uses.

Jobs here are latest attempts (a failed job that was retried shows as its retry), as
`remixq.reports` counts them. Pages are keyset ranges on job ids along the jobs'
(campaign_id, id) index, so a page deep into a 100,000-job campaign costs what the first does.
A variant filter is a condition on one axis's value inside the job's JSON variant (jsonb
equality on PostgreSQL, `json_extract` on SQLite): its axis must be one the campaign has.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, cast, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, selectinload

from remixq.db import json_dumps
from remixq.errors import FieldError, InvalidInput
from remixq.models import Job
from remixq.reports import superseded_attempt
from remixq.states import JobStatus

PAGE_MAX = 200
# Distinct variants read to list a campaign's axes: a matrix with more combinations than this
# is still filtered by any axis value, but its value lists show those of the first ones only.
MAX_VARIANTS = 2000


@dataclass(frozen=True)
class Axis:
    """A variant axis (a spec's dotted field path, or `job` for its explicit jobs) and its
    values, in the order they first appear."""

    name: str
    values: list[Any]


@dataclass(frozen=True)
class Axes:
    """A campaign's variant axes; `complete` is False when it has more distinct variants than
    were read (MAX_VARIANTS)."""

    axes: list[Axis]
    complete: bool = True

    def get(self, name: str) -> Axis | None:
        return next((axis for axis in self.axes if axis.name == name), None)


def value_key(value: Any) -> str:
    """An axis value as text, its identity in a form or a URL: its JSON."""
    return json_dumps(value)


def parse_value(text: str, axis: Axis) -> Any:
    """The value of `axis` that `text` (its `value_key`) names; InvalidInput otherwise."""
    for value in axis.values:
        if value_key(value) == text:
            return value
    raise InvalidInput(
        [FieldError(axis.name, text, f"one of the axis's values ({len(axis.values)} of them)")]
    )


def variant_axes(session: Session, campaign_id: int) -> Axes:
    """The axes of the campaign's variants and their values (none for a plain file's jobs)."""
    rows = session.scalars(
        select(Job.variant)
        .where(Job.campaign_id == campaign_id, Job.variant.is_not(None))
        .distinct()
        .limit(MAX_VARIANTS + 1)
    ).all()
    values: dict[str, dict[str, Any]] = {}
    for variant in rows[:MAX_VARIANTS]:
        if not isinstance(variant, Mapping):
            continue
        for name, value in variant.items():
            values.setdefault(str(name), {}).setdefault(value_key(value), value)
    axes = [Axis(name, _ordered(list(found.values()))) for name, found in values.items()]
    return Axes(axes, complete=len(rows) <= MAX_VARIANTS)


def _ordered(values: list[Any]) -> list[Any]:
    """Numbers in order; anything else as first seen (DISTINCT has no order of its own, so
    text is sorted too, for a stable list)."""
    if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return sorted(values, key=value_key)


def axis_condition(session: Session, axis: str, value: Any) -> ColumnElement[bool]:
    """The jobs whose variant holds `value` at `axis` (a name `variant_axes` listed)."""
    if session.get_bind().dialect.name == "postgresql":
        found = type_coerce(Job.variant, JSONB)[axis]
        return found == cast(literal(json_dumps(value)), JSONB)
    extracted = func.json_extract(Job.variant, "$." + json.dumps(axis))
    if value is None:
        return extracted.is_(None)
    if isinstance(value, list | dict):
        return extracted == func.json(json_dumps(value))  # arrays and objects come back as JSON
    if isinstance(value, Decimal):
        return extracted == float(value)
    return extracted == value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Filter:
    """What a gallery shows: jobs of one status and model (None: any), whose variants hold
    these axis values."""

    status: str | None = None
    model: str | None = None
    variant: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.status is not None and self.status not in {s.value for s in JobStatus}:
            raise InvalidInput(
                [FieldError("status", self.status, "one of " + ", ".join(s for s in JobStatus))]
            )


def _conditions(session: Session, campaign_id: int, where: Filter) -> list[ColumnElement[bool]]:
    where.check()
    conditions = [Job.campaign_id == campaign_id, ~superseded_attempt()]
    if where.status is not None:
        conditions.append(Job.status == where.status)
    if where.model is not None:
        conditions.append(Job.model == where.model)
    conditions.extend(axis_condition(session, axis, v) for axis, v in where.variant.items())
    return conditions


def jobs_page(
    session: Session,
    campaign_id: int,
    where: Filter | None = None,
    *,
    after_id: int | None = None,
    limit: int = 48,
) -> list[Job]:
    """Up to `limit` latest attempts of the campaign that `where` selects, with ids above
    `after_id`, by id, their images loaded."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput([FieldError("limit", limit, f"a whole number from 1 to {PAGE_MAX}")])
    query = select(Job).where(*_conditions(session, campaign_id, where or Filter()))
    if after_id is not None:
        query = query.where(Job.id > after_id)
    query = query.order_by(Job.id).limit(limit).options(selectinload(Job.images))
    return list(session.scalars(query))


@dataclass(frozen=True)
class Comparison:
    """One axis's values side by side: `columns` are the values compared; each row holds, for
    jobs whose other axes agree (`label`), the jobs of each value (by column)."""

    axis: str
    columns: list[Any]
    rows: list[tuple[str, list[list[Job]]]]
    truncated: bool


def compare(
    session: Session,
    campaign_id: int,
    axis: Axis,
    values: Sequence[Any],
    where: Filter | None = None,
    *,
    per_value: int = 24,
) -> Comparison:
    """The first `per_value` jobs of each of `values` (of `axis`), lined up in rows by the
    values of their other axes, so that each row compares like with like."""
    if len(values) < 2:
        raise InvalidInput(
            [FieldError("value", [value_key(v) for v in values], "two or more values to compare")]
        )
    rows: dict[str, list[list[Job]]] = {}
    truncated = False
    base = where or Filter()
    for column, value in enumerate(values):
        scoped = Filter(base.status, base.model, {**base.variant, axis.name: value})
        found = jobs_page(session, campaign_id, scoped, limit=per_value + 1)
        truncated = truncated or len(found) > per_value
        for job in found[:per_value]:
            rest = {k: v for k, v in (job.variant or {}).items() if k != axis.name}
            label = ", ".join(f"{k}: {value_key(v)}" for k, v in rest.items()) or "(all)"
            rows.setdefault(label, [[] for _ in values])[column].append(job)
    return Comparison(axis.name, list(values), list(rows.items()), truncated)


def models_of(session: Session, campaign_ids: Iterable[int]) -> dict[int, list[str]]:
    """The models each campaign's jobs name, most used first."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Job.campaign_id, Job.model, func.count())
        .where(Job.campaign_id.in_(ids))
        .group_by(Job.campaign_id, Job.model)
    ).all()
    found: dict[int, list[tuple[int, str]]] = {}
    for campaign_id, model, count in rows:
        found.setdefault(int(campaign_id or 0), []).append((-int(count), str(model)))
    return {key: [model for _, model in sorted(models)] for key, models in found.items()}


def model_names(session: Session, campaign_id: int) -> list[str]:
    return models_of(session, [campaign_id]).get(campaign_id, [])
