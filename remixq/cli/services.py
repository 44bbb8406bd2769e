"""The long-running processes: `remixq receiver`, `remixq worker` and `remixq beat`, and
`remixq health`, the health check a container runtime runs against one of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from remixq.cli.context import Context, pass_context
from remixq.config import Settings

if TYPE_CHECKING:
    from webhook_receiver.state import Publisher


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: REMIXQ_RECEIVER_PORT (8701).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes.")
@click.option(
    "--connections",
    type=click.IntRange(10),
    default=None,
    help="Concurrent connections per worker process. Default: REMIXQ_RECEIVER_CONNECTIONS (1000).",
)
@pass_context
def receiver(
    ctx: Context, host: str, port: int | None, workers: int | None, connections: int | None
) -> None:
    """Serve the webhook receiver with gunicorn (gevent workers)."""
    import logging

    from remixq.logs import configure
    from webhook_receiver.server import serve, use_multiprocess_metrics

    ctx.settings.check_secret()  # before gunicorn starts (create_app checks it in each worker)
    use_multiprocess_metrics()  # before anything imports prometheus-client
    # Warnings as key=value lines; the REST API's one line per request (naming its key, never
    # the key itself) at INFO. The webhook path logs only what goes wrong.
    configure("WARNING")
    logging.getLogger("remixq.api").setLevel(logging.INFO)
    log = logging.getLogger("remixq.receiver")
    log.setLevel(logging.INFO)
    port = port or ctx.settings.receiver_port
    log.info("remixq receiver listening on http://%s:%d", host, port)
    serve(
        ctx.settings,
        host,
        port,
        workers=workers,
        connections=connections,
        publisher=_api_publisher,
    )


def _api_publisher(settings: Settings) -> Publisher:
    """The broker publisher of the receiver's REST API: the worker's producer and shared pause,
    imported when the API first needs them (never on the webhook path, nor before gevent's
    patching)."""
    from webhook_receiver.state import Publisher
    from worker.app import enqueuer
    from worker.runtime import Runtime

    return Publisher(
        enqueue=enqueuer(settings),
        lift_shared_pause=lambda: Runtime(settings).limit.resume(),
    )


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option(
    "--serve",
    type=click.Choice(["all", "main", "native", "background"]),
    default="all",
    show_default=True,
    help="main: Runware submissions, with the background pool beside them; background: beat's"
    " ticks and the image downloads, on a pool of REMIXQ_BACKGROUND_CONCURRENCY threads;"
    " native: the synchronous calls to Ideogram's own API, on a pool of"
    " REMIXQ_NATIVE_CONCURRENCY threads; all: main and native. A pool beside another runs in a"
    " child process of its own.",
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def worker(ctx: Context, serve: str, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker that submits jobs; extra options go to `celery worker` (of the
    main pool when it starts others beside it).

    Submission waits on the provider, so the main pool is threads with a concurrency of 32,
    keeping many requests in flight; override with e.g. --pool prefork --concurrency 4. Beat's
    ticks and the image downloads have a pool of their own (REMIXQ_BACKGROUND_CONCURRENCY
    threads), which submissions waiting on the provider's limit never hold, and so has a
    native call, which holds its thread for the whole generation (REMIXQ_NATIVE_CONCURRENCY
    threads): `--serve background` and `--serve native` run dedicated workers for each.
    """
    from remixq.logs import configure
    from worker.app import create_celery
    from worker.checks import check_webhook_url
    from worker.names import ASSETS_QUEUE, NATIVE_QUEUE, PERIODIC_QUEUE, QUEUE
    from worker.pools import pools_beside

    settings = ctx.settings
    settings.check_secret()  # every job's webhook URL is made from it
    app = create_celery(settings)
    configure("INFO")
    quiet = ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    if serve in ("native", "background"):
        queues, concurrency = (
            ([NATIVE_QUEUE], settings.native_concurrency)
            if serve == "native"
            else ([PERIODIC_QUEUE, ASSETS_QUEUE], settings.background_concurrency)
        )
        defaults = [
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--queues={','.join(queues)}",
            f"--hostname={serve}@%h",
            "--loglevel=INFO",
            *quiet,
        ]
        _serve_health(settings, "worker")  # its own /metrics: its tasks, its connection
        app.worker_main([*_quiet(settings), "worker", *defaults, *celery_args])
        return
    check_webhook_url(settings)  # a WARNING when the provider's webhooks would not reach us
    _serve_health(settings, "worker")
    pools_beside(
        ["background", "native"] if serve == "all" else ["background"],
        metrics_port=settings.metrics_port,
    )
    defaults = ["--pool=threads", "--concurrency=32", f"--queues={QUEUE}", "--loglevel=INFO"]
    defaults += quiet
    if settings.broker_url is None:
        # The embedded default is one machine with no operator: its worker schedules the relay
        # and the reconciler itself. With a real broker, run `remixq beat` (one or more) instead.
        defaults += ["--beat", f"--schedule={_beat_schedule_file(settings)}"]
    app.worker_main([*_quiet(settings), "worker", *defaults, *celery_args])


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
    _serve_health(settings, "beat")
    defaults = ["--loglevel=INFO", f"--schedule={_beat_schedule_file(settings)}"]
    app.start([*_quiet(settings), "beat", *defaults, *celery_args])


def _quiet(settings: Settings) -> list[str]:
    """Celery's start-up banner is printed, not logged: left out when every line must be JSON."""
    return ["--quiet"] if settings.log_format == "json" else []


def _serve_health(settings: Settings, role: str) -> None:
    """`/healthz` and `/metrics` on REMIXQ_METRICS_PORT (none when unset). Beat also reports
    the database's gauges (jobs by status, spend): one process per deployment that has them
    besides the receivers, however many workers run."""
    if settings.metrics_port is None:
        return
    from remixq.db import make_engine
    from remixq.metrics import DatabaseCollector
    from worker import health

    if role == "worker":
        health.serve(settings.metrics_port, health.worker_health, health.registry())
        return
    engine = make_engine(settings.database)
    collector = DatabaseCollector(lambda: engine)
    health.serve(settings.metrics_port, health.beat_health, health.registry(collector))


@click.command()
@click.argument("url")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds.")
def health(url: str, timeout: float) -> None:
    """Exit 0 when URL answers 200, 1 otherwise (one line saying why): the health check of a
    container runtime, e.g. `remixq health http://127.0.0.1:8701/readyz` for a receiver or
    `remixq health http://127.0.0.1:9808/healthz` for a worker or beat (REMIXQ_METRICS_PORT)."""
    import requests

    try:
        answer = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        raise click.ClickException(f"{url}: no answer ({type(exc).__name__})") from None
    if answer.status_code != 200:
        raise click.ClickException(f"{url}: HTTP {answer.status_code} {answer.text[:200]}")
    click.echo(f"{url}: ok")


def _beat_schedule_file(settings: Settings) -> Path:
    settings.ensure_data_dir()
    return (settings.data_dir / "celerybeat-schedule").resolve()
