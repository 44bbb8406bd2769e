"""The `remixq` command: the edge that composes the domain, the worker, the receiver and the
simulator. Framework imports stay inside the commands that need them, so `remixq --help` and the
domain package stay light."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session, sessionmaker

from remixq.config import Settings, load_settings
from remixq.errors import InvalidInput


class Context:
    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings


pass_context = click.make_pass_decorator(Context, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="remixq")
def cli() -> None:
    """remixq: image-remix campaigns through Runware's Ideogram Remix models.

    Configuration comes from the environment (REMIXQ_DATABASE_URL, REMIXQ_BROKER_URL,
    RUNWARE_API_KEY, ...); without any, everything runs embedded: SQLite, a SQLite-backed
    broker and the local simulator.
    """


@cli.group()
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


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: REMIXQ_RECEIVER_PORT (8701).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes.")
@click.option(
    "--connections",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Concurrent connections per worker (gevent).",
)
@pass_context
def receiver(
    ctx: Context, host: str, port: int | None, workers: int | None, connections: int
) -> None:
    """Serve the webhook receiver with gunicorn (gevent workers)."""
    from webhook_receiver.server import serve

    port = port or ctx.settings.receiver_port
    serve(ctx.settings, host, port, workers=workers, connections=connections)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def worker(ctx: Context, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker that submits jobs; extra options go to `celery worker`.

    Submission waits on the provider, so the default pool is threads with a concurrency of 32,
    keeping many requests in flight; override with e.g. --pool prefork --concurrency 4.
    """
    from worker.app import create_celery

    settings = ctx.settings
    app = create_celery(settings)
    defaults = [
        "--pool=threads",
        "--concurrency=32",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if settings.broker_url is None:
        # The embedded default is one machine with no operator: its worker schedules the relay
        # and the reconciler itself. With a real broker, run exactly one `remixq beat` instead.
        defaults += ["--beat", f"--schedule={_beat_schedule_file(settings)}"]
    app.worker_main(["worker", *defaults, *celery_args])


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def beat(ctx: Context, celery_args: tuple[str, ...]) -> None:
    """Run Celery beat: it schedules the relay and the reconciler; extra options go to
    `celery beat`. Run one per deployment (the embedded default's worker runs its own)."""
    from worker.app import create_celery

    settings = ctx.settings
    app = create_celery(settings)
    defaults = ["--loglevel=INFO", f"--schedule={_beat_schedule_file(settings)}"]
    app.start(["beat", *defaults, *celery_args])


def _beat_schedule_file(settings: Settings) -> Path:
    settings.ensure_data_dir()
    return (settings.data_dir / "celerybeat-schedule").resolve()


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--campaign",
    "campaign_name",
    help="Campaign name; an existing one is extended. Default: the file's name and the time.",
)
@click.option("--json", "as_json", is_flag=True, help="Print {campaign_id, jobs} as JSON.")
@pass_context
def submit(ctx: Context, file: Path, campaign_name: str | None, as_json: bool) -> None:
    """Validate a campaign FILE (JSONL or CSV) as a whole, store its jobs, enqueue them."""
    from remixq.campaigns import read_campaign

    new_jobs = read_campaign(file)
    name = campaign_name or f"{file.stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    campaign_id, job_ids = _store_and_enqueue(ctx.settings, name, str(file), new_jobs)
    if as_json:
        click.echo(json.dumps({"campaign_id": campaign_id, "jobs": len(job_ids)}))
    else:
        click.echo(f"campaign {name!r} (id {campaign_id}): {len(job_ids)} jobs enqueued")


def _store_and_enqueue(
    settings: Settings, name: str, source: str, new_jobs: list[Any]
) -> tuple[int, list[int]]:
    from remixq import jobs
    from remixq.db import transaction
    from worker.app import create_celery
    from worker.producer import enqueue

    with database(settings) as sessions:
        with transaction(sessions) as session:
            campaign = jobs.get_or_create_campaign(session, name=name, source=source)
            job_ids = jobs.create_jobs(
                session,
                campaign=campaign,
                new_jobs=new_jobs,
                webhook_url_for=webhook_url_for(settings),
            )
            campaign_id = campaign.id
        enqueue(create_celery(settings), sessions, job_ids)
    return campaign_id, job_ids


@contextmanager
def database(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the configured database for one command.

    The embedded default needs no set-up step: its SQLite schema is brought to head first.
    """
    from remixq.db import make_engine, make_sessionmaker

    if settings.database_url is None:
        from remixq import migrate

        settings.ensure_data_dir()
        migrate.upgrade(settings.database)
    engine = make_engine(settings.database)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def webhook_url_for(settings: Settings) -> Callable[[str], str]:
    """The per-job webhook URL maker: the receiver's public URL and a token for the task."""
    from remixq.security import webhook_url

    secret, base = settings.secret(), settings.webhook_base_url
    return lambda task_uuid: webhook_url(base, secret, task_uuid)


@cli.command()
@click.argument("campaign", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@pass_context
def status(ctx: Context, campaign: str | None, as_json: bool) -> None:
    """Where each job of CAMPAIGN (id or name; default: the newest) stands, and its cost."""
    from remixq.reports import campaign_report, find_campaign

    with database(ctx.settings) as sessions, sessions() as session:
        found = find_campaign(session, campaign)
        if found is None:
            raise InvalidInput([_no_campaign(campaign)])
        report = campaign_report(session, found)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        from remixq.cli.tables import print_report

        print_report(report)


@cli.command()
@click.argument("campaign", required=False)
@click.option("--job", "task_uuid", help="Retry only the failed job with this taskUUID.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def retry(ctx: Context, campaign: str | None, task_uuid: str | None, as_json: bool) -> None:
    """Retry the failed jobs of CAMPAIGN (or one job): new attempts with new taskUUIDs."""
    from remixq import jobs
    from remixq.db import transaction
    from remixq.reports import find_campaign
    from worker.app import create_celery
    from worker.producer import enqueue

    if campaign is None and task_uuid is None:
        raise click.UsageError("name a CAMPAIGN or a --job")
    settings = ctx.settings
    with database(settings) as sessions:
        with transaction(sessions) as session:
            campaign_id = None
            if campaign is not None:
                found = find_campaign(session, campaign)
                if found is None:
                    raise InvalidInput([_no_campaign(campaign)])
                campaign_id = found.id
            job_ids = jobs.retry_failed(
                session,
                campaign_id=campaign_id,
                task_uuid=_task_uuid(task_uuid),
                webhook_url_for=webhook_url_for(settings),
            )
        if job_ids:
            enqueue(create_celery(settings), sessions, job_ids)
    if as_json:
        click.echo(json.dumps({"retried": len(job_ids)}))
    else:
        click.echo(f"{len(job_ids)} failed job(s) retried with new taskUUIDs")


@cli.command()
@click.option(
    "--status",
    "statuses",
    multiple=True,
    default=("orphan", "invalid"),  # remixq.replay.DEFAULT_STATUSES
    show_default=True,
    help="Inbox statuses to replay (repeatable).",
)
@click.option("--id", "event_ids", type=int, multiple=True, help="Replay these event ids.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def replay(
    ctx: Context, statuses: tuple[str, ...], event_ids: tuple[int, ...], as_json: bool
) -> None:
    """Re-ingest stored webhook events (idempotent: nothing is stored twice)."""
    from remixq.db import transaction
    from remixq.replay import replay_events
    from remixq.states import InboxStatus

    known = [status.value for status in InboxStatus]
    for status_ in statuses:
        if status_ not in known:
            from remixq.errors import FieldError

            raise InvalidInput([FieldError("--status", status_, f"one of {', '.join(known)}")])
    with database(ctx.settings) as sessions, transaction(sessions) as session:
        tally = replay_events(session, statuses=statuses, event_ids=event_ids)
    if as_json:
        click.echo(json.dumps(dict(tally)))
    else:
        click.echo(", ".join(f"{n} {k}" for k, n in sorted(tally.items())) or "nothing to replay")


def _task_uuid(value: str | None) -> str | None:
    if value is None:
        return None
    import uuid

    from remixq.errors import FieldError

    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidInput([FieldError("--job", value, "a taskUUID (UUID)")]) from None


def _no_campaign(ref: str | None) -> Any:
    from remixq.errors import FieldError

    return FieldError("CAMPAIGN", ref, "the id or name of an existing campaign")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _register_optional_commands() -> None:
    from remixq.cli.demo import demo
    from simulator.cli import simulator

    cli.add_command(simulator)
    cli.add_command(demo)


_register_optional_commands()


def main() -> None:
    """Entry point: bad input and unreachable services end in one readable line, not a trace."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except InvalidInput as exc:
        click.echo(f"error: {exc}", err=True)
        for error in exc.errors[1:20]:
            click.echo(f"       {error}", err=True)
        sys.exit(2)
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            click.echo(f"error: the database is unreachable: {exc.orig}", err=True)
        else:
            click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
