"""`remixq campaigns` (every campaign at a glance) and `remixq export` (one row per image, CSV or
JSON lines, streamed): both read aggregates and keyset pages, never a campaign whole."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from remixq.cli.context import Context, pass_context
from remixq.errors import FieldError, InvalidInput


@click.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print an array of {id, name, counts, images, cost_usd, created_at, finished_at, ...}.",
)
@pass_context
def campaigns(ctx: Context, as_json: bool) -> None:
    """Every campaign: its jobs by status, images, cost, and when it started and finished."""
    from remixq.db import database
    from remixq.reports import campaign_summaries

    with database(ctx.settings) as sessions, sessions() as session:
        summaries = campaign_summaries(session)
    if as_json:
        click.echo(json.dumps([summary.to_json() for summary in summaries], indent=2))
    else:
        from remixq.cli.tables import print_campaigns

        print_campaigns(summaries)


@click.command()
@click.argument("campaign")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["csv", "jsonl"]),
    default="jsonl",
    show_default=True,
    help="CSV (parameters as a JSON cell) or one JSON object per line.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE instead of standard output.",
)
@click.option(
    "--images",
    "images_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write every stored image under DIR/<campaign>/<variant or job>/<image UUID>.<ext>,"
    " and the rows, each with its file, to DIR/manifest.jsonl (or .csv).",
)
@pass_context
def export(
    ctx: Context, campaign: str, format_: str, output: Path | None, images_dir: Path | None
) -> None:
    """One row per image of CAMPAIGN (every attempt: each was paid for): the campaign, job,
    taskUUID, status, model, prompt and other parameters, variant, image UUID, URL, seed, NSFW
    flag, cost in USD, and its copy's status, reason, SHA-256, size, content type and
    dimensions. Streamed page by page: a campaign of any size exports in constant memory.
    With --images DIR, the stored images are written too, with the rows as a manifest."""
    from remixq.db import database
    from remixq.reports import export_rows, find_campaign
    from remixq.submission import no_campaign

    if images_dir is not None and output is not None:
        raise InvalidInput(
            [
                FieldError(
                    "--output", str(output), "no --output with --images (the manifest is in DIR)"
                )
            ]
        )
    with database(ctx.settings) as sessions, sessions() as session:
        found = find_campaign(session, campaign)
        if found is None:
            raise InvalidInput([no_campaign(campaign)])
        if images_dir is not None:
            _export_images(ctx, session, found, format_, images_dir)
            return
        rows = export_rows(session, found.id)
        if output is None:
            _write(rows, format_, sys.stdout)
            return
        partial = output.with_name(output.name + ".partial")
        with partial.open("w", encoding="utf-8", newline="") as out:
            count = _write(rows, format_, out)
        partial.replace(output)  # a reader never sees half an export under the name asked for
    click.echo(f"{count} image(s) of campaign {found.name!r} written to {output}", err=True)


def _export_images(ctx: Context, session: Any, found: Any, format_: str, folder: Path) -> None:
    from remixq.assets.export import write_images
    from remixq.assets.storage import open_storage
    from remixq.reports import EXPORT_FIELDS, export_rows

    folder.mkdir(parents=True, exist_ok=True)
    rows = write_images(
        export_rows(session, found.id, storage_keys=True), open_storage(ctx.settings), folder
    )
    manifest = folder / f"manifest.{format_}"
    partial = manifest.with_name(manifest.name + ".partial")
    written = [0]

    def counted(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            written[0] += row["file"] is not None
            yield row

    with partial.open("w", encoding="utf-8", newline="") as out:
        count = _write(counted(rows), format_, out, fields=(*EXPORT_FIELDS, "file"))
    partial.replace(manifest)
    click.echo(
        f"{written[0]} of {count} image(s) of campaign {found.name!r} written to {folder}"
        f" (the others have no stored copy: see asset_status in {manifest.name})",
        err=True,
    )


def _write(
    rows: Iterator[dict[str, Any]],
    format_: str,
    out: IO[str],
    *,
    fields: tuple[str, ...] | None = None,
) -> int:
    from remixq.db import json_dumps
    from remixq.reports import EXPORT_FIELDS, export_csv_row

    count = 0
    if format_ == "jsonl":
        for row in rows:
            out.write(json_dumps(row) + "\n")
            count += 1
        return count
    writer = csv.DictWriter(out, fieldnames=fields or EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(export_csv_row(row))
        count += 1
    return count
