"""The long-running processes: `remixq receiver`, `remixq worker` and `remixq beat`."""

from __future__ import annotations

from pathlib import Path

import click

from remixq.cli.context import Context, pass_context
from remixq.config import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: REMIXQ_RECEIVER_PORT (8701).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes.")
@click.option(
    "--connections",
    type=click.IntRange(10),
    default=None,
    help="Concurrent connections per worker process. Default: REMIXQ_RECEIVER_CONNECTIONS"
    " (1000).",
)
@pass_context
def receiver(
    ctx: Context, host: str, port: int | None, workers: int | None, connections: int | None
) -> None:
    """Serve the webhook receiver with gunicorn (gevent workers)."""
    from webhook_receiver.server import serve

    ctx.settings.check_secret()  # before gunicorn starts (create_app checks it in each worker)
    port = port or ctx.settings.receiver_port
    click.echo(f"remixq receiver listening on http://{host}:{port}", err=True)
    serve(ctx.settings, host, port, workers=workers, connections=connections)


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def worker(ctx: Context, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker that submits jobs; extra options go to `celery worker`.

    Submission waits on the provider, so the default pool is threads with a concurrency of 32,
    keeping many requests in flight; override with e.g. --pool prefork --concurrency 4.
    """
    from remixq.logs import configure
    from worker.app import create_celery
    from worker.checks import check_webhook_url

    settings = ctx.settings
    settings.check_secret()  # every job's webhook URL is made from it
    app = create_celery(settings)
    configure("INFO")
    check_webhook_url(settings)  # a WARNING when the provider's webhooks would not reach us
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
        # and the reconciler itself. With a real broker, run `remixq beat` (one or more) instead.
        defaults += ["--beat", f"--schedule={_beat_schedule_file(settings)}"]
    app.worker_main(["worker", *defaults, *celery_args])


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def beat(ctx: Context, celery_args: tuple[str, ...]) -> None:
    """Run Celery beat: it schedules the relay and the reconciler; extra options go to
    `celery beat`. Run at least one per deployment with a real broker; several are safe (both
    claim rows with FOR UPDATE SKIP LOCKED, so no job is taken twice), each only adds rounds.
    The embedded default's worker runs its own."""
    from worker.app import create_celery

    settings = ctx.settings
    settings.check_secret()  # it schedules for workers that cannot work without it
    app = create_celery(settings)
    defaults = ["--loglevel=INFO", f"--schedule={_beat_schedule_file(settings)}"]
    app.start(["beat", *defaults, *celery_args])


def _beat_schedule_file(settings: Settings) -> Path:
    settings.ensure_data_dir()
    return (settings.data_dir / "celerybeat-schedule").resolve()
