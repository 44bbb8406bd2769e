"""Campaign spec files (YAML or JSON): many requests written as defaults, a matrix of variants
and explicit jobs, expanded into validated jobs that each remember their variant.

    name: spring-tins
    budget_usd: "25.00"
    defaults: {model: "ideogram:4@2", width: 1024, height: 1024, numberResults: 2}
    matrix:                       # every combination of the axes' values, over the defaults
      positivePrompt: ["a tea tin, autumn palette", "a tea tin, winter palette"]
      inputs.referenceImages: [["tins/green.png"], ["tins/red.png"]]
    jobs: []                      # explicit requests, each merged over the defaults too

An axis is a dotted path into the request (``providerSettings.ideogram.stylePreset``) and its
values replace what the defaults hold there; an explicit job is merged into the defaults
(objects key by key, anything else replaced). A null, as an axis value or in a job, leaves the
field out whatever the defaults hold there. Every expanded job is validated like a line of a
JSONL file (``campaigns.validate_rows``), and an error is located by the axis values that made
it (``matrix {positivePrompt: "...", ...}``) or by its job's index (``job 3``). A job's variant
is its axis values ({path: value}, values as written: a local image's path, not its bytes), or
``{"job": index}`` for an explicit job. The size of the matrix is computed from the axes'
lengths before anything is expanded, and one past ``REMIXQ_MAX_MATRIX_JOBS`` is refused unless
the caller allows it; nothing is ever expanded past ``HARD_MAX_JOBS`` (the API's own, lower,
limit is its caller's ``hard_max``).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from remixq.budgets import check_budget
from remixq.campaigns import Row, validate_rows
from remixq.errors import FieldError, InvalidInput
from remixq.failover import check_failover
from remixq.local_images import LocalImages
from remixq.producing import NewJob
from remixq.url_policy import UrlPolicy

SUFFIXES = (".yaml", ".yml", ".json")
SPEC_KEYS = ("name", "budget_usd", "failover", "defaults", "matrix", "jobs")
MAX_SPEC_BYTES = 16 * 1024 * 1024
# Whatever the caller allows: past this a matrix would hold the process's memory hostage.
HARD_MAX_JOBS = 1_000_000
MAX_NAME_CHARS = 200
_LOCATION_VALUE_CHARS = 40
ALLOW_LARGE = 'remixq submit --allow-large, or "allow_large": true in an API body'


@dataclass(frozen=True)
class Spec:
    """A spec's parts, checked for shape (not yet expanded nor validated as requests)."""

    name: str | None = None
    budget_usd: Decimal | None = None
    # The campaign's failover provider (remixq.failover): "ideogram", or None (off).
    failover: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    matrix: dict[str, list[Any]] = field(default_factory=dict)
    jobs: list[Any] = field(default_factory=list)

    @property
    def matrix_jobs(self) -> int:
        """How many jobs the matrix makes (the product of its axes' lengths; 0 without one)."""
        return math.prod(len(values) for values in self.matrix.values()) if self.matrix else 0

    @property
    def job_count(self) -> int:
        return self.matrix_jobs + len(self.jobs)


def parse_spec(document: object, *, ignore: tuple[str, ...] = ()) -> Spec:
    """A spec from a parsed document; InvalidInput naming every bad part (keys in ``ignore``
    are the caller's, e.g. the API's ``allow_large``)."""
    if not isinstance(document, Mapping):
        raise InvalidInput(
            [FieldError("(spec)", document, "a mapping with " + ", ".join(SPEC_KEYS))]
        )
    errors: list[FieldError] = []
    for key in document:
        if key not in SPEC_KEYS and key not in ignore:
            errors.append(FieldError(str(key), key, "one of the keys " + ", ".join(SPEC_KEYS)))
    name = document.get("name")
    if name is not None and (
        not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_CHARS
    ):
        errors.append(FieldError("name", name, f"a text of 1 to {MAX_NAME_CHARS} characters"))
    budget = _budget(document.get("budget_usd"), errors)
    failover = None
    try:
        failover = check_failover(document.get("failover"))
    except InvalidInput as exc:
        errors.extend(exc.errors)
    defaults = document.get("defaults", {})
    if defaults is None:
        defaults = {}
    if not isinstance(defaults, dict):
        errors.append(FieldError("defaults", defaults, "a mapping of request fields"))
    matrix = _matrix(document.get("matrix"), errors)
    jobs = document.get("jobs", [])
    if jobs is None:
        jobs = []
    if not isinstance(jobs, list):
        errors.append(FieldError("jobs", jobs, "a list of requests"))
    if not errors and not matrix and not jobs:
        errors.append(
            FieldError("jobs", document.get("jobs"), "at least one job: requests, or a matrix")
        )
    if errors:
        raise InvalidInput(errors)
    return Spec(
        name=name.strip() if isinstance(name, str) else None,
        budget_usd=budget,
        failover=failover,
        defaults=defaults,
        matrix=matrix,
        jobs=jobs,
    )


def _budget(value: object, errors: list[FieldError]) -> Decimal | None:
    if value is None:
        return None
    try:
        return check_budget(value)
    except InvalidInput as exc:
        errors.extend(exc.errors)
        return None


def _matrix(value: object, errors: list[FieldError]) -> dict[str, list[Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FieldError("matrix", value, "a mapping of dotted field path to values"))
        return {}
    axes: dict[str, list[Any]] = {}
    for path, values in value.items():
        if not isinstance(path, str) or not all(part.strip() for part in path.split(".")):
            errors.append(
                FieldError(f"matrix.{path}", path, "a dotted field path, e.g. inputs.seedImage")
            )
        elif not isinstance(values, list) or not values:
            errors.append(FieldError(f"matrix.{path}", values, "a non-empty list of values"))
        else:
            axes[path] = values
    return axes


def check_size(
    spec: Spec, *, max_jobs: int, allow_large: bool, hard_max: int = HARD_MAX_JOBS
) -> None:
    """Refuse a spec that would make more than ``max_jobs`` jobs (unless ``allow_large``), or
    more than ``hard_max`` in any case, from the axes' lengths, before anything is made."""
    count = spec.job_count
    limit = hard_max if allow_large else min(max_jobs, hard_max)
    if count <= limit:
        return
    lengths = " x ".join(str(len(values)) for values in spec.matrix.values()) or "0"
    described = f"{lengths} axis values and {len(spec.jobs)} jobs = {count:,} jobs"
    if allow_large or max_jobs >= hard_max:
        allowed = f"at most {hard_max:,} jobs in one spec, even when a large one is allowed"
    else:
        allowed = (
            f"at most {max_jobs:,} jobs (REMIXQ_MAX_MATRIX_JOBS) unless a large matrix is asked"
            f" for ({ALLOW_LARGE})"
        )
    raise InvalidInput([FieldError("matrix", described, allowed)])


def expand(spec: Spec) -> Iterator[Row]:
    """The spec's requests, unvalidated: every combination of the matrix's axes over the
    defaults (the first axis varying slowest), then each explicit job merged over them."""
    paths = list(spec.matrix)
    # No axes, no matrix jobs (the product of no lists would be one empty combination).
    combinations = itertools.product(*spec.matrix.values()) if paths else iter(())
    for values in combinations:
        variant = dict(zip(paths, values, strict=True))
        location = matrix_location(variant)
        request = copy.deepcopy(spec.defaults)
        problem = None
        for path, value in variant.items():
            problem = _set_path(request, path, copy.deepcopy(value), location)
            if problem is not None:
                break
        yield Row(location, problem or request, variant)
    for index, job in enumerate(spec.jobs):
        location = f"job {index}"
        if not isinstance(job, dict):
            problem = FieldError(f"jobs[{index}]", job, "a request (a mapping)", location)
            yield Row(location, problem, {"job": index})
            continue
        yield Row(location, _merged(spec.defaults, job), {"job": index}, f"jobs[{index}].")


def read_spec(
    spec: Spec,
    *,
    local_images: LocalImages | None,
    urls: UrlPolicy,
    max_jobs: int,
    allow_large: bool = False,
    hard_max: int = HARD_MAX_JOBS,
) -> list[NewJob]:
    """The spec's jobs, each validated as a JSONL line and carrying its variant; InvalidInput
    listing every problem (each located by its axis values or job index). A local image named
    by many jobs is read and encoded once (``local_images`` keeps what it read)."""
    check_size(spec, max_jobs=max_jobs, allow_large=allow_large, hard_max=hard_max)
    return validate_rows(expand(spec), local_images=local_images, urls=urls)


def load_spec_file(path: Path) -> Spec:
    """The spec in a ``.yaml``/``.yml`` or ``.json`` file; InvalidInput naming the file and
    what is wrong (a YAML or JSON syntax error, with its line)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInput([FieldError("FILE", str(path), "a .yaml, .yml or .json spec file")])
    if not path.is_file():
        raise InvalidInput([FieldError("FILE", str(path), "an existing campaign file")])
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise InvalidInput([FieldError("FILE", str(path), "a spec file under 16 MiB")])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [FieldError("FILE", str(path), f"a UTF-8 text file (byte {exc.start} is not UTF-8)")]
        ) from None
    return load_spec_text(text, str(path))


def load_spec_text(text: str, name: str) -> Spec:
    """The spec in a document's text, JSON when `name` ends in .json, else YAML; InvalidInput
    naming the file (`name`) and what is wrong."""
    json_text = name.lower().endswith(".json")
    try:
        document = json.loads(text) if json_text else _load_yaml(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if json_text else "YAML"
        detail = " ".join(str(exc).split())
        raise InvalidInput([FieldError("FILE", name, f"a {kind} document ({detail})")]) from None
    return parse_spec(document)


class _NoAliases(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no stubs here
    """YAML without anchors and aliases: a few lines of aliases can stand for billions of
    nodes, which expanding a matrix would copy out."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted in a spec", event.start_mark
            )
        return super().compose_node(parent, index)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_NoAliases)  # noqa: S506 (a SafeLoader, without aliases)


def matrix_location(variant: Mapping[str, Any]) -> str:
    """Where a matrix job's error is: its axis values, e.g.
    ``matrix {positivePrompt: "a tea tin", inputs.referenceImages: ["tins/red.png"]}``."""
    parts = []
    for path, value in variant.items():
        text = json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > _LOCATION_VALUE_CHARS:
            text = text[: _LOCATION_VALUE_CHARS - 3] + "..."
        parts.append(f"{path}: {text}")
    return "matrix {" + ", ".join(parts) + "}"


def variant_label(variant: Mapping[str, Any] | None) -> str:
    """A variant as one line for people and as a grouping key: its JSON, keys in axis order."""
    if variant is None:
        return "(no variant)"
    return json.dumps(variant, ensure_ascii=False, separators=(", ", ": "), default=str)


def variant_text(variant: Mapping[str, Any]) -> str:
    """A variant for a table cell: ``path=value`` pairs, e.g. ``positivePrompt="a tea tin",
    providerSettings.ideogram.stylePreset="BRIGHT_ART"`` (``job=0`` for an explicit job)."""
    return ", ".join(f"{path}={json.dumps(value, default=str)}" for path, value in variant.items())


def _set_path(request: dict[str, Any], path: str, value: Any, location: str) -> FieldError | None:
    """Set ``path`` (dotted) in ``request`` to ``value``, making objects on the way; a field
    error when the defaults hold something else than an object on the way."""
    *parents, leaf = path.split(".")
    target = request
    walked: list[str] = []
    for part in parents:
        walked.append(part)
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            return FieldError(
                ".".join(walked),
                child,
                f"an object, for the matrix axis {path} to set a field inside it",
                location,
            )
        target = child
    if value is None:
        target.pop(leaf, None)  # null: the field is left out, whatever the defaults say
    else:
        target[leaf] = value
    return None


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: objects key by key, anything else replaced,
    a null removed."""
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        if value is None:
            merged.pop(key, None)  # null: the field is left out, whatever the defaults say
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
