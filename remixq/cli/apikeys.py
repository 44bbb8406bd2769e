"""`remixq apikey create|list|revoke`: the keys of the REST API (remixq.apikeys)."""

from __future__ import annotations

import json

import click

from remixq.cli.context import Context, pass_context


@click.group()
def apikey() -> None:
    """Keys of the REST API (/api/v1): create, list, revoke. Only a hash of each is stored."""


@apikey.command()
@click.argument("name")
@click.option("--read-only", is_flag=True, help="The key may only read (GET).")
@click.option("--json", "as_json", is_flag=True, help='Print {"name": ..., "key": ...}.')
@pass_context
def create(ctx: Context, name: str, read_only: bool, as_json: bool) -> None:
    """Make key NAME and print it, once: it is not stored and cannot be shown again."""
    from remixq.apikeys import create_key
    from remixq.db import database, transaction

    with database(ctx.settings) as sessions, transaction(sessions) as session:
        made = create_key(session, name=name, read_only=read_only)
    if as_json:
        click.echo(json.dumps({"name": made.name, "key": made.key, "read_only": read_only}))
    else:
        kind = "read-only " if read_only else ""
        click.echo(f"{kind}API key {made.name!r} (shown once, keep it now):", err=True)
        click.echo(made.key)


@apikey.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def list_(ctx: Context, as_json: bool) -> None:
    """Every key: name, public prefix, access, created, last used, revoked (never the key)."""
    from remixq.apikeys import describe, list_keys
    from remixq.db import database

    with database(ctx.settings) as sessions, sessions() as session:
        keys = [describe(row) for row in list_keys(session)]
    if as_json:
        click.echo(json.dumps(keys, indent=2))
        return
    if not keys:
        click.echo("no API keys (remixq apikey create NAME)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "prefix", "access", "created", "last used", "revoked")
    for key in keys:
        table.add_row(
            str(key["name"]),
            str(key["prefix"]),
            "read-only" if key["read_only"] else "read-write",
            _when(key["created_at"]),
            _when(key["last_used_at"]),
            _when(key["revoked_at"]),
        )
    Console().print(table)


@apikey.command()
@click.argument("name")
@pass_context
def revoke(ctx: Context, name: str) -> None:
    """Revoke key NAME: its next request is refused (401). The key's name stays taken."""
    from remixq.apikeys import revoke_key
    from remixq.db import database, transaction

    with database(ctx.settings) as sessions, transaction(sessions) as session:
        row = revoke_key(session, name=name)
        revoked_at = row.revoked_at
    click.echo(f"API key {name!r} revoked ({revoked_at:%Y-%m-%d %H:%M:%S} UTC)")


def _when(value: object) -> str:
    return str(value)[:19].replace("T", " ") if value else "-"
