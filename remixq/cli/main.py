"""The `remixq` group, the commands registered on it, and the entry point that turns bad input
and unreachable services into one readable line instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from pydantic import ValidationError

from remixq.cli.apikeys import apikey
from remixq.cli.campaigns import replay, retry, status, submit
from remixq.cli.context import Context
from remixq.cli.control import cancel, pause, resume
from remixq.cli.demo import demo
from remixq.cli.inbox import inbox
from remixq.cli.reports import campaigns, export
from remixq.cli.schedules import schedule
from remixq.cli.schema import db
from remixq.cli.services import beat, health, receiver, worker
from remixq.cli.spend import budget, costs
from remixq.cli.watch import watch
from remixq.errors import InvalidInput
from remixq.logs import configure
from simulator.cli import LOGGING_HOOK, simulator


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="remixq")
@click.pass_context
def cli(click_ctx: click.Context) -> None:
    """remixq: image-remix campaigns through Runware's Ideogram Remix models.

    Configuration comes from the environment (REMIXQ_DATABASE_URL, REMIXQ_BROKER_URL,
    RUNWARE_API_KEY, ...); without any, everything runs embedded: SQLite, a SQLite-backed
    broker and the local simulator.
    """
    context = click_ctx.ensure_object(Context)

    def configure_logging(level: str | int, *, scrub: Callable[[str], str] | None = None) -> None:
        # The simulator's way to remixq's logging (it imports nothing of the product).
        context.settings  # noqa: B018 (reads REMIXQ_LOG_FORMAT and the secrets to hide)
        configure(level, scrub=scrub)

    click_ctx.meta[LOGGING_HOOK] = configure_logging


for _command in (
    db,
    receiver,
    worker,
    beat,
    health,
    submit,
    status,
    campaigns,
    export,
    cancel,
    pause,
    resume,
    retry,
    replay,
    inbox,
    simulator,
    demo,
    apikey,
    costs,
    budget,
    watch,
    schedule,
):
    cli.add_command(_command)


def main() -> None:
    """Entry point: bad input and unreachable services end in one readable line, not a trace."""
    try:
        cli(standalone_mode=False, prog_name="remixq")
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # an unknown option, a value off its choices: one line
        where = exc.ctx.command_path if exc.ctx else "remixq"
        click.echo(f"error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except InvalidInput as exc:
        click.echo(f"error: {exc}", err=True)
        for error in exc.errors[1:20]:
            click.echo(f"       {error}", err=True)
        sys.exit(2)
    except ValidationError as exc:  # a setting from the environment (remixq.config)
        from remixq.logs import clean

        for detail in exc.errors()[:20]:
            name = ".".join(str(part) for part in detail["loc"])
            shown = "[hidden]" if "KEY" in name or "SECRET" in name else repr(detail["input"])
            click.echo(clean(f"error: {name}: {shown} is not allowed: {detail['msg']}"), err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 (the edge: one readable line, never a traceback)
        from sqlalchemy.exc import OperationalError

        from remixq.logs import clean  # an exception's words may quote a URL or a key

        if isinstance(exc, OperationalError):
            click.echo(clean(f"error: the database is unreachable: {exc.orig}"), err=True)
        else:
            click.echo(clean(f"error: {type(exc).__name__}: {exc}"), err=True)
        sys.exit(1)
