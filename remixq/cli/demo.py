"""`remixq demo`: the main job, end to end, on the embedded default.

It starts the simulator (unless RUNWARE_API_KEY is set), the webhook receiver and a worker as
real subprocesses, submits the bundled example campaign (built from the model pages' examples),
shows progress until every job is final, prints the results and stops the processes cleanly.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from remixq.cli.context import Context, pass_context
from remixq.cli.processes import Process, free_port, http_ready, start, wait_until
from remixq.config import Settings, load_settings
from remixq.db import database
from remixq.errors import FieldError, InvalidInput
from remixq.examples import demo_path
from remixq.states import FINAL


@click.command()
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path),
    default=None,
    help="A campaign file to run instead of the bundled example.",
)
@click.option(
    "--timeout",
    type=float,
    default=120,
    show_default=True,
    help="Seconds to wait for every job to be final.",
)
@pass_context
def demo(ctx: Context, file: Path | None, timeout: float) -> None:
    """Run an example campaign end to end and print its images and costs."""
    from remixq import migrate
    from remixq.cli.campaigns import read_campaign_file
    from remixq.cli.tables import print_report
    from remixq.submission import store_and_enqueue
    from worker.app import enqueuer

    console = Console(stderr=False)
    base = ctx.settings
    real = not base.uses_simulator
    if real and not base.public_url:
        raise InvalidInput(
            [
                FieldError(
                    "REMIXQ_PUBLIC_URL",
                    None,
                    "the public base URL at which Runware can reach this machine's receiver",
                )
            ]
        )
    data_dir = base.data_dir.resolve()
    ports = {"REMIXQ_SIMULATOR_PORT": str(free_port()), "REMIXQ_RECEIVER_PORT": str(free_port())}
    settings = load_settings(
        data_dir=data_dir,
        simulator_port=int(ports["REMIXQ_SIMULATOR_PORT"]),
        receiver_port=int(ports["REMIXQ_RECEIVER_PORT"]),
    )
    env = {"REMIXQ_DATA_DIR": str(data_dir), **ports}
    log_dir = data_dir / "logs"
    settings.ensure_data_dir()
    migrate.upgrade(settings.database)
    campaign_file = file or demo_path()
    new_jobs = read_campaign_file(settings, campaign_file)

    processes: list[Process] = []
    try:
        with console.status("starting the simulator, receiver and worker..."):
            if not real:
                processes.append(
                    start(
                        "simulator",
                        ["simulator", "--port", ports["REMIXQ_SIMULATOR_PORT"]],
                        env=env,
                        log_dir=log_dir,
                    )
                )
            processes.append(
                start(
                    "receiver",
                    ["receiver", "--port", ports["REMIXQ_RECEIVER_PORT"], "--workers", "2"],
                    env=env,
                    log_dir=log_dir,
                )
            )
            processes.append(
                start(
                    "worker",
                    ["worker", "--concurrency", "16", "--loglevel", "WARNING"],
                    env=env,
                    log_dir=log_dir,
                )
            )
            if not real:
                _wait_ready(processes[0], f"{settings.api_url.rsplit('/v1', 1)[0]}/_control/stats")
            _wait_ready(processes[-2], f"http://127.0.0.1:{settings.receiver_port}/healthz")
        name = f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        # No content digest: the demo may always run again with the same file.
        stored = store_and_enqueue(
            settings,
            name=name,
            source=str(campaign_file),
            new_jobs=new_jobs,
            enqueue=enqueuer(settings),
        )
        campaign_id, job_ids = stored.campaign_id, stored.job_ids
        console.print(
            f"campaign [bold]{name}[/] (id {campaign_id}): {len(job_ids)} jobs, "
            f"{'Runware' if real else 'local simulator'}"
        )
        finished = _follow(settings, campaign_id, len(job_ids), timeout, processes, console)
        from remixq.reports import campaign_report, find_campaign

        with database(settings) as sessions, sessions() as session:
            campaign = find_campaign(session, f"#{campaign_id}")
            assert campaign is not None
            print_report(campaign_report(session, campaign), console)
    finally:
        for process in reversed(processes):
            process.stop()
    if not finished:
        console.print(f"[red]not every job was final after {timeout:.0f}s[/]; logs in {log_dir}")
        sys.exit(1)


def _wait_ready(process: Process, url: str) -> None:
    probe = http_ready(url)
    try:
        wait_until(lambda: probe() or not process.alive(), timeout=30, what=process.name)
    except TimeoutError:
        raise click.ClickException(f"{process.name} did not start: {process.log_tail()}") from None
    if not process.alive():
        raise click.ClickException(f"{process.name} exited: {process.log_tail()}")


def _follow(
    settings: Settings,
    campaign_id: int,
    total: int,
    timeout: float,
    processes: list[Process],
    console: Console,
) -> bool:
    """A progress bar until every job is final; False on the deadline or a dead process."""
    from remixq.reports import campaign_progress

    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("jobs"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with database(settings) as sessions, Progress(*columns, console=console) as progress:
        bar = progress.add_task("jobs", total=total, detail="")
        while True:
            with sessions() as session:
                counts = campaign_progress(session, campaign_id)
            done = sum(n for status, n in counts.items() if status in FINAL)
            detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            progress.update(bar, completed=done, detail=detail)
            if done >= total:
                return True
            dead = [p.name for p in processes if not p.alive()]
            if dead or time.monotonic() > deadline:
                if dead:
                    console.print(f"[red]{', '.join(dead)} exited unexpectedly[/]")
                return False
            time.sleep(0.2)
