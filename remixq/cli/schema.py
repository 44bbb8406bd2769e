"""`remixq db`: bring the database's schema up or down (Alembic)."""

from __future__ import annotations

import click

from remixq.cli.context import Context, pass_context


@click.group()
def db() -> None:
    """Database schema (Alembic)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(ctx: Context, revision: str) -> None:
    """Bring the database to the latest schema (PostgreSQL or SQLite)."""
    from remixq import migrate

    ctx.settings.ensure_data_dir()
    migrate.upgrade(ctx.settings.database, revision)
    click.echo(f"database at {revision}: {_redacted(ctx.settings.database)}")


@db.command("downgrade")
@click.argument("revision")
@pass_context
def db_downgrade(ctx: Context, revision: str) -> None:
    """Step the schema back to REVISION (e.g. base)."""
    from remixq import migrate

    migrate.downgrade(ctx.settings.database, revision)
    click.echo(f"database at {revision}")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
