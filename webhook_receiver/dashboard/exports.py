"""A campaign's exports from the dashboard: its images' rows as CSV or JSON Lines (the rows of
`remixq export`), and its images as a zip (the stored assets, with the rows as a manifest);
each streamed in keyset batches, in constant memory whatever the campaign's size."""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, g, stream_with_context
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from remixq.db import json_dumps, transaction
from remixq.errors import UnknownCampaign
from remixq.models import Campaign
from remixq.reports import EXPORT_FIELDS, export_csv_row, export_rows
from webhook_receiver.dashboard import stored_assets
from webhook_receiver.dashboard.blueprint import bp
from webhook_receiver.state import state

log = logging.getLogger("remixq.dashboard")


def _name(campaign_id: int) -> str:
    with transaction(state(current_app).api_sessions) as db:
        name = db.get(Campaign, campaign_id)
        if name is None:
            raise UnknownCampaign(campaign_id)
        return name.name


def _download(body: Iterator[bytes], mimetype: str, filename: str) -> Response:
    response = current_app.response_class(stream_with_context(body), mimetype=mimetype)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in filename)
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return response


def _rows(campaign_id: int) -> Iterator[dict[str, Any]]:
    with state(current_app).api_sessions() as db:
        yield from export_rows(db, campaign_id)


@bp.get("/campaigns/<int:campaign_id>/export.csv")
def export_csv(campaign_id: int) -> ResponseReturnValue:
    name = _name(campaign_id)

    def lines() -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for count, row in enumerate(_rows(campaign_id), 1):
            writer.writerow(export_csv_row(row))
            if count % 200 == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    log.info("dashboard export", extra={"campaign_id": campaign_id, "key_name": g.user.name})
    return _download(lines(), "text/csv", f"{name}.csv")


@bp.get("/campaigns/<int:campaign_id>/export.jsonl")
def export_jsonl(campaign_id: int) -> ResponseReturnValue:
    name = _name(campaign_id)

    def lines() -> Iterator[bytes]:
        for row in _rows(campaign_id):
            yield (json_dumps(row) + "\n").encode()

    log.info("dashboard export", extra={"campaign_id": campaign_id, "key_name": g.user.name})
    return _download(lines(), "application/x-ndjson", f"{name}.jsonl")


class _Pipe(io.RawIOBase):
    """A write-only stream whose bytes are taken away as they come: zipfile writes the
    archive into it, the response sends what it holds."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


@bp.get("/campaigns/<int:campaign_id>/images.zip")
def export_zip(campaign_id: int) -> ResponseReturnValue:
    """`manifest.jsonl` (the export's rows, each with `file`: its name in the zip, or null for
    an image not stored here, which its `image_url` still names) and
    `images/<job>-<image UUID>.<ext>` for each image stored here. Two passes over the rows, a
    batch at a time: nothing is held but the batch."""
    name = _name(campaign_id)
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def batches(db: Session) -> Iterator[list[tuple[dict[str, Any], stored_assets.Stored | None]]]:
        for batch in _chunks(export_rows(db, campaign_id), 500):
            found = stored_assets.locate(app, db, [row["image_uuid"] for row in batch])
            yield [(row, found.get(row["image_uuid"])) for row in batch]

    def file_name(row: dict[str, Any], stored: stored_assets.Stored) -> str:
        return f"images/{row['job_id']}-{row['image_uuid']}.{stored.extension}"

    def archive() -> Iterator[bytes]:
        pipe = _Pipe()
        with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED) as out:
            with state(app).api_sessions() as db, out.open(_entry("manifest.jsonl"), "w") as m:
                for batch in batches(db):
                    for row, stored in batch:
                        row["file"] = None if stored is None else file_name(row, stored)
                        m.write((json_dumps(row) + "\n").encode())
                    yield pipe.take()
            with state(app).api_sessions() as db:
                for batch in batches(db):
                    for row, stored in batch:
                        if stored is not None:
                            out.writestr(_entry(file_name(row, stored)), stored.read())
                            yield pipe.take()
        yield pipe.take()

    log.info("dashboard zip export", extra={"campaign_id": campaign_id, "key_name": g.user.name})
    return _download(archive(), "application/zip", f"{name}-images.zip")


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _entry(filename: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(filename, date_time=datetime.now(UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED
    return info
