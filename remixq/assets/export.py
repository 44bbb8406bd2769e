"""A campaign's stored images written to a folder under readable names, for
`remixq export CAMPAIGN --images DIR`:

    DIR/<campaign>/<variant or job-N>/<image UUID>.<ext>

a spec's variant as its axis values (`stylePreset=VINTAGE_POSTER_positivePrompt=a-tea-tin`, cut
to a length a file system takes), a plain request's as its job; names are reduced to letters,
digits and `.-_=` so that no value can lead outside DIR. Each export row gains `file`, the path
written (relative to DIR; null for an image whose copy is not stored), and goes to the manifest.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from remixq.assets.storage import Storage

_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")
MAX_NAME = 80


def readable(text: str) -> str:
    """`text` as one safe path component."""
    name = _UNSAFE.sub("-", text).strip("-.")[:MAX_NAME].strip("-.")
    return name or "-"


def folder_of(row: dict[str, Any]) -> str:
    variant = row.get("variant")
    if isinstance(variant, dict) and variant:
        parts = []
        for path, value in sorted(variant.items()):
            shown = value if isinstance(value, str) else str(value)
            parts.append(f"{path.rsplit('.', 1)[-1]}={shown}")
        return readable("_".join(parts))
    return f"job-{row['job_id']}"


def write_images(
    rows: Iterable[dict[str, Any]], storage: Storage, folder: Path
) -> Iterator[dict[str, Any]]:
    """Write each stored image of `rows` (export rows with their `storage_key`) under `folder`;
    yields the rows with `file` and without the key."""
    for row in rows:
        key = row.pop("storage_key", None)
        path: str | None = None
        if row.get("asset_status") == "stored" and key:
            relative = (
                Path(readable(row["campaign"]))
                / folder_of(row)
                / f"{row['image_uuid']}.{key.rsplit('.', 1)[-1]}"
            )
            _write(folder / relative, storage, key, row.get("size_bytes"))
            path = relative.as_posix()
        yield {**row, "file": path}


def _write(target: Path, storage: Storage, key: str, size: int | None) -> None:
    if target.is_file() and size is not None and target.stat().st_size == size:
        return  # written by an earlier export: the same bytes (the key is their SHA-256)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.write_bytes(storage.get(key))
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
