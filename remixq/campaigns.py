"""Campaign files: JSONL (one request per line) or CSV (one per row).

A line is a request of the provider its ``"provider"`` field names (``remixq.providers``;
default ``runware``: a Runware imageInference request; ``ideogram``: Ideogram's own Remix
fields), validated by that provider's schema. The whole file is validated before anything is
stored; every error names its line and field.
A reference image given as a local file path (relative to the file, confined to its folder and
the operator's image folders: ``local_images``) is inlined as a data URI. Requests that arrive
over HTTP go through ``read_requests``, which reads no local file unless told where it may.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remixq.errors import FieldError, InvalidInput
from remixq.local_images import ImageRefused, LocalImages
from remixq.producing import NewJob
from remixq.providers import DEFAULT_PROVIDER, PROVIDER_FIELD, PROVIDERS, Provider, provider_for
from remixq.url_policy import UrlPolicy

MAX_FILE_BYTES = 512 * 1024 * 1024
SUFFIXES = (".jsonl", ".ndjson", ".csv")
# CSV cells are text; these (every provider's) stay text even when they look like numbers or JSON.
TEXT_FIELDS = frozenset(
    {PROVIDER_FIELD, *(name for p in PROVIDERS.values() for name in p.text_fields)}
)
# In CSV, a list (of images, of style codes) may be written as "a.png|b.png" instead of a JSON
# array.
LIST_FIELDS = frozenset(name for p in PROVIDERS.values() for name in p.list_fields)


# What a Runware image field may hold where no local file is read (a request that came over
# HTTP); each provider says it in its own words (Provider.stored_image_text).
NO_LOCAL_FILES = "a UUID, an http(s) URL, a data URI or base64 (local files are not read here)"


def read_campaign(
    path: Path, *, image_dirs: Iterable[Path] = (), urls: UrlPolicy | None = None
) -> list[NewJob]:
    """Validate a whole campaign file; raise InvalidInput listing every bad line and field.

    Local reference images are read from the file's folder and from ``image_dirs`` only;
    ``urls`` decides which hosts the request's URLs may name (default: any http(s) host).
    """
    if not path.is_file():
        raise InvalidInput([FieldError("FILE", str(path), "an existing campaign file")])
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput([FieldError("FILE", str(path), "a file under 512 MiB")])
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInput(
            [
                FieldError(
                    "FILE",
                    str(path),
                    "a .jsonl, .ndjson or .csv file, or a .yaml, .yml or .json spec",
                )
            ]
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [FieldError("FILE", str(path), f"a UTF-8 text file (byte {exc.start} is not UTF-8)")]
        ) from None
    local = LocalImages(path.parent, tuple(image_dirs))
    return read_campaign_text(text, str(path), local_images=local, urls=urls)


def read_campaign_text(
    text: str,
    name: str,
    *,
    local_images: LocalImages | None,
    urls: UrlPolicy | None = None,
) -> list[NewJob]:
    """Validate a campaign file's text (JSONL, or CSV when `name` ends in .csv); InvalidInput
    listing every bad line and field, or naming the file (`name`). Without ``local_images`` (a
    schedule's stored text) an image field must hold an image reference, not a path."""
    if "\x00" in text:
        raise InvalidInput([FieldError("FILE", name, "a text file (it holds NUL bytes)")])
    rows = _csv_rows(text) if name.lower().endswith(".csv") else _jsonl_rows(text)
    jobs = _read_rows(rows, local_images, urls or UrlPolicy())
    if not jobs:
        raise InvalidInput([FieldError("FILE", name, "a file with at least one request")])
    return jobs


def read_requests(
    rows: Iterable[object],
    *,
    local_images: LocalImages | None = None,
    urls: UrlPolicy | None = None,
) -> list[NewJob]:
    """Validate a list of requests (an API body's); raise InvalidInput listing every problem,
    each located as ``requests[i]``.

    Without ``local_images`` (the HTTP API: it never reads the server's disk) an image field must
    hold a UUID, an http(s) URL, a data URI or base64; anything else is refused, not opened.
    """

    def located() -> Iterator[tuple[str, dict[str, Any] | FieldError]]:
        for index, row in enumerate(rows):
            location = f"requests[{index}]"
            if isinstance(row, dict):
                yield location, row
            else:
                yield location, FieldError("(request)", row, "a JSON object", location)

    jobs = _read_rows(located(), local_images, urls or UrlPolicy())
    if not jobs:
        raise InvalidInput([FieldError("requests", [], "a list of at least one request")])
    return jobs


def _read_rows(
    rows: Iterable[tuple[str, dict[str, Any] | FieldError]],
    local_images: LocalImages | None,
    urls: UrlPolicy,
) -> list[NewJob]:
    return validate_rows(
        (Row(location, row) for location, row in rows), local_images=local_images, urls=urls
    )


@dataclass(frozen=True)
class Row:
    """A request to validate: where it came from (``location``), the request (or the reason
    it is none), its variant, and what its fields' names are prefixed with in an error."""

    location: str
    request: dict[str, Any] | FieldError
    variant: dict[str, Any] | None = None
    field_prefix: str = ""


def validate_rows(
    rows: Iterable[Row], *, local_images: LocalImages | None, urls: UrlPolicy
) -> list[NewJob]:
    """Each row validated as a line of a JSONL campaign file (its local images inlined when
    ``local_images`` is given, refused unread otherwise); InvalidInput listing every problem,
    each at its row's location."""
    jobs: list[NewJob] = []
    errors: list[FieldError] = []
    for row in rows:
        if isinstance(row.request, FieldError):
            errors.append(row.request)
            continue
        try:
            provider = provider_for(row.request.get(PROVIDER_FIELD, DEFAULT_PROVIDER))
            body = {k: v for k, v in row.request.items() if k != PROVIDER_FIELD}
            inlined = _inline_local_images(body, provider, local_images, row.location)
            request = provider.parse_request(inlined, urls=urls)
            jobs.append(NewJob(request, row.location, row.variant, provider.name))
        except InvalidInput as exc:
            errors.extend(
                FieldError(
                    row.field_prefix + e.field, e.value, e.allowed, e.location or row.location
                )
                for e in exc.errors
            )
    if errors:
        raise InvalidInput(errors)
    return jobs


def content_digest(path: Path) -> str:
    """The SHA-256 (hex) of a campaign file's bytes: the same content submitted again is
    recognised by it, whatever the file is called."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _jsonl_rows(text: str) -> Iterator[tuple[str, dict[str, Any] | FieldError]]:
    for number, line in enumerate(text.splitlines(), start=1):
        location = f"line {number}"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield (
                location,
                FieldError("(line)", line, f"one JSON object per line ({exc.msg})", location),
            )
            continue
        if not isinstance(row, dict):
            yield location, FieldError("(line)", row, "a JSON object", location)
            continue
        yield location, row


def _csv_rows(text: str) -> Iterator[tuple[str, dict[str, Any] | FieldError]]:
    reader = csv.DictReader(io.StringIO(text))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a cell over the csv module's size limit
            location = f"line {reader.line_num}"
            yield location, FieldError("(row)", None, f"a CSV row ({exc})", location)
            return
        location = f"line {reader.line_num}"
        if None in row:
            yield (
                location,
                FieldError("(row)", row[None], "no more cells than header columns", location),
            )
            continue
        request: dict[str, Any] = {}
        for column, cell in row.items():
            if cell is None or cell == "":
                continue
            _set_path(request, column.strip(), _cell_value(column.strip(), cell))
        yield location, request


def _cell_value(column: str, cell: str) -> Any:
    name = column.rsplit(".", 1)[-1]
    if name in TEXT_FIELDS:
        return cell
    if name in LIST_FIELDS and not cell.lstrip().startswith("["):
        return [part.strip() for part in cell.split("|") if part.strip()]
    try:
        return json.loads(cell)
    except ValueError:
        return cell


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def _inline_local_images(
    row: dict[str, Any], provider: Provider, local_images: LocalImages | None, location: str
) -> dict[str, Any]:
    """Replace local file paths in image fields by data URIs; without ``local_images`` (a
    request from the HTTP API) a value that is not an image reference is refused unread."""
    errors: list[FieldError] = []

    def visit(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            return {k: visit(v, f"{path}.{k}" if path else k) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v, f"{path}[{i}]") for i, v in enumerate(node)]
        leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
        if (
            leaf in provider.image_fields
            and isinstance(node, str)
            and not provider.is_image_reference(node)
        ):
            if local_images is None:
                allowed = f"{provider.stored_image_text} (local files are not read here)"
                errors.append(FieldError(path, node, allowed, location))
                return node
            try:
                return local_images.data_uri(node)
            except ImageRefused as refused:
                errors.append(FieldError(path, node, refused.allowed, location))
        return node

    inlined: dict[str, Any] = visit(row, "")
    if errors:
        raise InvalidInput(errors)
    return inlined
