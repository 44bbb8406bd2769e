"""`remixq inbox prune`: the webhook inbox's rows that no replay needs, deleted once older than
the retention (`remixq.inbox`)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import click

from remixq.cli.context import Context, pass_context
from remixq.errors import FieldError, InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")


def parse_duration(option: str, value: str) -> timedelta:
    """`7d`, `12h`, `30m`, `90s` or a number of seconds; anything else is refused."""
    match = _DURATION.match(value.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        allowed = "a positive duration: a number with a unit s, m, h, d or w (e.g. 7d, 12h)"
        raise InvalidInput([FieldError(option, value, allowed)])
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNITS[unit or "s"])


@click.group()
def inbox() -> None:
    """The webhook inbox: every body received, kept for replay."""


@inbox.command()
@click.option(
    "--older-than",
    metavar="DURATION",
    help="Delete rows older than this (7d, 12h, 30m...). Default: REMIXQ_INBOX_RETENTION.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def prune(ctx: Context, older_than: str | None, dry_run: bool, as_json: bool) -> None:
    """Delete processed, invalid and rejected inbox rows older than the retention, in batches.

    Orphans (bodies waiting for their job) are never deleted.
    """
    from remixq.db import database
    from remixq.inbox import prune as prune_inbox

    age = (
        parse_duration("--older-than", older_than)
        if older_than is not None
        else timedelta(seconds=ctx.settings.inbox_retention)
    )
    with database(ctx.settings) as sessions:
        pruned = prune_inbox(sessions, older_than=age, dry_run=dry_run)
    if as_json:
        answer = {
            "before": pruned.before.isoformat(),
            "found": pruned.found,
            "deleted": pruned.deleted,
            "dry_run": dry_run,
        }
        click.echo(json.dumps(answer))
        return
    found = ", ".join(f"{n} {status}" for status, n in pruned.found.items()) or "none"
    cutoff = pruned.before.isoformat(timespec="seconds")
    if dry_run:
        click.echo(f"would delete inbox rows received before {cutoff}: {found}")
    else:
        click.echo(f"deleted {pruned.deleted} inbox rows received before {cutoff} ({found})")
