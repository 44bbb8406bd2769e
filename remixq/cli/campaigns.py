"""The commands on campaigns and webhooks: `submit`, `status`, `retry` and `replay`. Each parses
its arguments, calls one domain function and prints the answer."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from remixq.cli.context import Context, broker_unreachable, pass_context
from remixq.errors import FieldError, InvalidInput

if TYPE_CHECKING:
    from remixq.config import Settings
    from remixq.producing import NewJob

# `remixq status` exits 3 when a job's latest attempt failed (0 otherwise, also while running).
EXIT_FAILED_JOBS = 3


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--campaign",
    "campaign_name",
    help="Campaign name; an existing one is extended. Default: the file's name and the time.",
)
@click.option(
    "--again",
    is_flag=True,
    help="Store a second copy of content that was submitted before (refused without it).",
)
@click.option(
    "--image-dir",
    "image_dirs",
    multiple=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="A folder, besides the file's own, that local reference images may come from "
    "(repeatable; added to REMIXQ_IMAGE_DIRS).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {campaign_id, name, jobs, enqueued, broker_error} as JSON.",
)
@pass_context
def submit(
    ctx: Context,
    file: Path,
    campaign_name: str | None,
    again: bool,
    image_dirs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Validate a campaign FILE (JSONL or CSV) as a whole, store its jobs, enqueue them.

    The same file content is refused the second time, naming the campaign it made, unless
    --again is given. Once stored, the campaign is submitted (exit 0) even when the broker is
    unreachable: its jobs are handed over when the broker is back (the relay of `remixq beat`).
    Local reference images are read from FILE's folder and the --image-dir folders only.
    """
    from remixq.campaigns import content_digest
    from remixq.submission import store_and_enqueue
    from worker.app import enqueuer

    new_jobs = read_campaign_file(ctx.settings, file, image_dirs)
    name = campaign_name or f"{file.stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    stored = store_and_enqueue(
        ctx.settings,
        name=name,
        source=str(file),
        new_jobs=new_jobs,
        enqueue=enqueuer(ctx.settings),
        content_sha256=None if again else content_digest(file),
    )
    jobs = len(stored.job_ids)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "campaign_id": stored.campaign_id,
                    "name": name,
                    "jobs": jobs,
                    "enqueued": stored.broker_error is None,
                    "broker_error": stored.broker_error,
                }
            )
        )
    elif stored.broker_error is None:
        click.echo(f"campaign {name!r} (id {stored.campaign_id}): {jobs} jobs enqueued")
    else:
        click.echo(
            f"stored campaign {name!r} (id {stored.campaign_id}): {jobs} jobs;"
            f" {broker_unreachable(stored.broker_error)}"
        )


@click.command()
@click.argument("campaign", required=False)
@click.option(
    "--history",
    is_flag=True,
    help="Also list the attempts a retry superseded, each with its retry (--json always has them).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@pass_context
def status(ctx: Context, campaign: str | None, history: bool, as_json: bool) -> None:
    """Where each job of CAMPAIGN stands, and its cost: the latest attempt of each job.

    CAMPAIGN is a name, or an id written #12 (a bare 12 is an id only when no campaign is named
    "12"); default: the newest campaign. Exit 3 when a job's latest attempt failed.
    """
    from remixq.db import database
    from remixq.reports import campaign_report, find_campaign
    from remixq.submission import no_campaign

    with database(ctx.settings) as sessions, sessions() as session:
        found = find_campaign(session, campaign)
        if found is None:
            raise InvalidInput([no_campaign(campaign)])
        report = campaign_report(session, found)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        from remixq.cli.tables import print_report

        print_report(report, history=history)
    if report["counts"].get("failed"):
        sys.exit(EXIT_FAILED_JOBS)


@click.command()
@click.argument("campaign", required=False)
@click.option("--job", "task_uuid", help="Retry only the failed job with this taskUUID.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def retry(ctx: Context, campaign: str | None, task_uuid: str | None, as_json: bool) -> None:
    """Retry the failed jobs of CAMPAIGN (or one job): new attempts with new taskUUIDs.

    A --job that names no job, or a job that is not failed or was retried already, is refused
    (exit 2).
    """
    from remixq.submission import retry_and_enqueue
    from worker.app import enqueuer

    if campaign is None and task_uuid is None:
        raise click.UsageError("name a CAMPAIGN or a --job")
    retried = retry_and_enqueue(
        ctx.settings,
        campaign=campaign,
        task_uuid=_task_uuid(task_uuid),
        enqueue=enqueuer(ctx.settings),
    )
    count = len(retried.job_ids)
    if as_json:
        answer = {
            "retried": count,
            "enqueued": retried.broker_error is None,
            "broker_error": retried.broker_error,
        }
        click.echo(json.dumps(answer))
    elif retried.broker_error is None:
        click.echo(f"{count} failed job(s) retried with new taskUUIDs")
    else:
        click.echo(
            f"{count} failed job(s) retried with new taskUUIDs;"
            f" {broker_unreachable(retried.broker_error)}"
        )


@click.command()
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
    from remixq.db import database, transaction
    from remixq.replay import replay_events
    from remixq.states import InboxStatus

    known = [status.value for status in InboxStatus]
    for status_ in statuses:
        if status_ not in known:
            raise InvalidInput([FieldError("--status", status_, f"one of {', '.join(known)}")])
    with database(ctx.settings) as sessions, transaction(sessions) as session:
        tally = replay_events(session, statuses=statuses, event_ids=event_ids)
    if as_json:
        click.echo(json.dumps(dict(tally)))
    else:
        click.echo(", ".join(f"{n} {k}" for k, n in sorted(tally.items())) or "nothing to replay")


def read_campaign_file(
    settings: Settings, file: Path, image_dirs: tuple[Path, ...] = ()
) -> list[NewJob]:
    """A campaign file read under the settings' image folders and URL policy (`submit`, `demo`)."""
    from remixq.campaigns import read_campaign
    from remixq.url_policy import UrlPolicy

    return read_campaign(
        file,
        image_dirs=(*settings.image_dirs, *image_dirs),
        urls=UrlPolicy(refuse_private=settings.refuse_private_urls),
    )


def _task_uuid(value: str | None) -> str | None:
    if value is None:
        return None
    import uuid

    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidInput([FieldError("--job", value, "a taskUUID (UUID)")]) from None
