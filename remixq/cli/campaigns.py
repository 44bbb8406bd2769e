"""The commands on campaigns and webhooks: `submit`, `status`, `retry` and `replay`. Each parses
its arguments, calls one domain function and prints the answer."""

from __future__ import annotations

import json
import shlex
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from remixq.cli.context import Context, broker_unreachable, pass_context
from remixq.errors import FieldError, InvalidInput

if TYPE_CHECKING:
    from decimal import Decimal

    from sqlalchemy.orm import Session

    from remixq.budgets import Carried, Keep
    from remixq.config import Settings
    from remixq.pricing import PriceTable
    from remixq.producing import NewJob
    from remixq.specs import Spec

# `remixq status` exits 3 when a job's latest attempt failed (0 otherwise, also while running).
EXIT_FAILED_JOBS = 3


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--campaign",
    "campaign_name",
    help="Campaign name; an existing one is extended. Default: a spec's name, else the file's "
    "name and the time.",
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
    "--dry-run",
    is_flag=True,
    help="Validate and expand, store nothing: print the jobs, images and estimated cost "
    "(per model and per variant). Needs no database.",
)
@click.option(
    "--allow-large",
    is_flag=True,
    help="Accept a spec whose matrix makes more jobs than REMIXQ_MAX_MATRIX_JOBS.",
)
@click.option(
    "--idempotency-key",
    "idempotency_key",
    help="Submitting again with this key and the same file (and --campaign) answers with the "
    "campaign the first made, storing nothing; with other content it is refused.",
)
@click.option(
    "--budget",
    "budget_usd",
    metavar="USD",
    help="The campaign's budget (e.g. 25.00): the jobs' estimates are reserved against it and "
    "what does not fit is refused whole. With --campaign naming an existing campaign, its "
    "budget from now on (never below what it has reserved and spent); a spec's budget_usd "
    "never changes an existing campaign's (one that differs is refused).",
)
@click.option(
    "--failover",
    "failover",
    metavar="PROVIDER",
    help="Re-run through PROVIDER (ideogram) a Runware ideogram:4@2 job that fails on "
    "Runware's side, once getResponse confirms Runware has no result for it; `off` turns it "
    "off (default: the spec's failover; an existing campaign keeps its own).",
)
@click.option(
    "--watch",
    "follow",
    is_flag=True,
    help="Then follow the campaign until every job is final (as `remixq watch`; exit 3 if "
    "one failed).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {campaign_id, name, jobs, enqueued, broker_error, replayed} as JSON (with "
    "--dry-run: {jobs, images, estimated_cost_usd, by_model, by_variant}).",
)
@pass_context
def submit(
    ctx: Context,
    file: Path,
    campaign_name: str | None,
    again: bool,
    image_dirs: tuple[Path, ...],
    dry_run: bool,
    allow_large: bool,
    idempotency_key: str | None,
    budget_usd: str | None,
    failover: str | None,
    follow: bool,
    as_json: bool,
) -> None:
    """Validate a campaign FILE as a whole, store its jobs, enqueue them.

    FILE is JSONL or CSV (one request per line or row), or a spec (.yaml, .yml, .json: name,
    budget_usd, defaults, matrix, jobs), expanded into one job per combination of the matrix's
    axes and one per explicit job, each validated and remembering its variant.

    The same file content is refused the second time, naming the campaign it made, unless
    --again is given. Once stored, the campaign is submitted (exit 0) even when the broker is
    unreachable: its jobs are handed over when the broker is back (the relay of `remixq beat`).
    Local reference images are read from FILE's folder and the --image-dir folders only.
    """
    from remixq import budgets
    from remixq.failover import check_failover
    from remixq.pricing import PriceTable

    _check_idempotency_key(idempotency_key)
    chosen: str | Keep | None = budgets.KEEP
    if failover is not None:
        chosen = check_failover(failover, "--failover")
    given = None if budget_usd is None else budgets.check_budget(budget_usd, "--budget")
    table = PriceTable.configured(ctx.settings) if dry_run else None
    spec, new_jobs = read_submission(ctx.settings, file, image_dirs, allow_large=allow_large)
    if table is not None:
        _print_estimate(new_jobs, table, as_json=as_json)
        return
    # --budget, else the spec's; without either an existing campaign keeps its budget. The
    # spec's is carried, not asked for: it must be an existing campaign's budget already.
    budget: Decimal | Carried | Keep | None = given
    if budget is None:
        carried = spec.budget_usd if spec is not None else None
        budget = budgets.Carried(carried) if carried else budgets.KEEP
    if failover is None and spec is not None and spec.failover is not None:
        chosen = spec.failover
    campaign_id = _store(
        ctx.settings, file, spec, new_jobs, campaign_name, again, idempotency_key, as_json,
        budget=budget, failover=chosen,
    )  # fmt: skip
    if follow:
        from remixq.cli.watch import watch_campaign

        sys.exit(watch_campaign(ctx.settings, f"#{campaign_id}"))


def _store(
    settings: Settings,
    file: Path,
    spec: Spec | None,
    new_jobs: list[NewJob],
    campaign_name: str | None,
    again: bool,
    idempotency_key: str | None,
    as_json: bool,
    *,
    budget: Decimal | Carried | Keep | None,
    failover: str | Keep | None,
) -> int:
    """Store and enqueue the jobs, print the answer; the campaign's id."""
    from remixq.budgets import BudgetConflict, usd
    from remixq.campaigns import content_digest
    from remixq.idempotency import IdempotencyKeyReused, request_digest
    from remixq.submission import store_and_enqueue
    from worker.app import enqueuer

    digest = content_digest(file)
    name = (
        campaign_name
        or (spec.name if spec is not None else None)
        or f"{file.stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    )
    try:
        stored = store_and_enqueue(
            settings,
            name=name,
            source=str(file),
            new_jobs=new_jobs,
            enqueue=enqueuer(settings),
            content_sha256=None if again else digest,
            budget=budget,
            failover=failover,
            idempotency_key=idempotency_key,
            # What the key stands for: this content, into the campaign named on the command
            # line (a default name holds the time, so it is not part of it).
            request_sha256=request_digest({"content_sha256": digest, "campaign": campaign_name}),
        )
    except BudgetConflict as exc:
        change = f"`remixq budget {shlex.quote(name)} {usd(exc.given)}` (or --budget)"
        raise exc.explained(change) from None
    except IdempotencyKeyReused as exc:
        made = f" (it made campaign {exc.campaign_id})" if exc.campaign_id is not None else ""
        raise InvalidInput(
            [
                FieldError(
                    "--idempotency-key",
                    idempotency_key,
                    f"a key not used before with other content or --campaign{made}; use a new"
                    " key for a new submission",
                )
            ]
        ) from None
    jobs = len(stored.job_ids)
    if stored.replayed:
        name = _campaign_name(settings, stored.campaign_id) or name
    if as_json:
        click.echo(
            json.dumps(
                {
                    "campaign_id": stored.campaign_id,
                    "name": name,
                    "jobs": jobs,
                    "enqueued": stored.broker_error is None,
                    "broker_error": stored.broker_error,
                    "replayed": stored.replayed,
                }
            )
        )
    elif stored.replayed:
        click.echo(
            f"campaign {name!r} (id {stored.campaign_id}) was made by an earlier submission"
            f" with idempotency key {idempotency_key!r}: nothing stored"
        )
    elif stored.broker_error is None:
        click.echo(f"campaign {name!r} (id {stored.campaign_id}): {jobs} jobs enqueued")
    else:
        click.echo(
            f"stored campaign {name!r} (id {stored.campaign_id}): {jobs} jobs;"
            f" {broker_unreachable(stored.broker_error)}"
        )
    return stored.campaign_id


def _check_idempotency_key(key: str | None) -> None:
    from remixq.idempotency import MAX_KEY_CHARS

    if key is not None and (not 1 <= len(key) <= MAX_KEY_CHARS or not key.isprintable()):
        raise InvalidInput(
            [FieldError("--idempotency-key", key, f"1 to {MAX_KEY_CHARS} printable characters")]
        )


def _campaign_name(settings: Settings, campaign_id: int) -> str | None:
    from remixq.db import database
    from remixq.models import Campaign

    with database(settings) as sessions, sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        return campaign.name if campaign is not None else None


def _print_estimate(new_jobs: list[NewJob], table: PriceTable, *, as_json: bool) -> None:
    """The dry run's answer: jobs, images and estimated cost, per model and per variant (the
    API's POST /api/v1/estimates answers the same document, without `price_table`)."""
    from remixq.estimates import estimate_document, estimate_jobs

    estimate = estimate_jobs(new_jobs, table)
    if as_json:
        click.echo(json.dumps(estimate_document(estimate) | {"price_table": table.source}))
        return
    from remixq.cli.tables import print_estimate

    print_estimate(estimate, table.source)


@click.command()
@click.argument("campaign", required=False)
@click.option(
    "--history",
    is_flag=True,
    help="Also list the attempts a retry superseded, each with its retry (--json always has them).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="The most jobs (and superseded attempts) the table lists; 0: all. --json lists all.",
)
@click.option(
    "--by",
    type=click.Choice(["job", "variant"]),
    default="job",
    show_default=True,
    help="job: each job and its images; variant: one row per variant (a spec's axis values) "
    "with its jobs by status, images, estimated and spent USD, to compare them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@pass_context
def status(
    ctx: Context, campaign: str | None, history: bool, limit: int, by: str, as_json: bool
) -> None:
    """Where each job of CAMPAIGN stands, and its cost: the latest attempt of each job (with
    --by variant: per variant).

    CAMPAIGN is a name, or an id written #12 (a bare 12 is an id only when no campaign is named
    "12"); default: the newest campaign. The totals come from the database's aggregates and the
    jobs are read page by page, so a campaign of any size is shown in constant memory; the
    table lists the first --limit jobs. Exit 3 when a job's latest attempt failed.
    """
    from remixq.db import database
    from remixq.reports import find_campaign, job_views, report_head
    from remixq.submission import no_campaign

    with database(ctx.settings) as sessions, sessions() as session:
        found = find_campaign(session, campaign)
        if found is None:
            raise InvalidInput([no_campaign(campaign)])
        head = report_head(session, found)
        if by == "variant":
            _print_variants(session, head, as_json=as_json)
            if head["counts"].get("failed"):
                sys.exit(EXIT_FAILED_JOBS)
            return
        jobs = job_views(session, found.id)
        superseded = job_views(session, found.id, superseded=True)
        if as_json:
            _stream_report(head, jobs, superseded)
        else:
            from remixq.cli.tables import print_report

            print_report(
                {**head, "jobs": jobs, "superseded": superseded},
                history=history,
                limit=limit or None,
            )
    if head["counts"].get("failed"):
        sys.exit(EXIT_FAILED_JOBS)


def _print_variants(session: Session, head: dict[str, Any], *, as_json: bool) -> None:
    """`status --by variant`: the campaign's variants, each with its jobs by status, images and
    spend."""
    from remixq.variants import by_variant

    variants = by_variant(session, head["campaign_id"])
    if as_json:
        document = {
            "campaign_id": head["campaign_id"],
            "name": head["name"],
            "outcome": head["outcome"],
            "by": "variant",
            "variants": [summary.to_json() for summary in variants],
        }
        click.echo(json.dumps(document, indent=2))
        return
    from remixq.cli.tables import print_variants

    print_variants(head, variants)


def _stream_report(
    head: dict[str, Any], jobs: Iterator[dict[str, Any]], superseded: Iterator[dict[str, Any]]
) -> None:
    """The report as one JSON document, its job lists written as they are read."""
    out = sys.stdout
    out.write(json.dumps(head, indent=2)[: -len("\n}")])
    for key, views in (("jobs", jobs), ("superseded", superseded)):
        out.write(f',\n  "{key}": [')
        for n, view in enumerate(views):
            text = textwrap.indent(json.dumps(view, indent=2), "    ")
            out.write(("," if n else "") + "\n" + text)
        out.write("\n  ]")
    out.write("\n}\n")
    out.flush()


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
    from remixq.ingest import Limits
    from remixq.replay import replay_events
    from remixq.states import InboxStatus

    known = [status.value for status in InboxStatus]
    for status_ in statuses:
        if status_ not in known:
            raise InvalidInput([FieldError("--status", status_, f"one of {', '.join(known)}")])
    with database(ctx.settings) as sessions, transaction(sessions) as session:
        tally = replay_events(
            session, statuses=statuses, event_ids=event_ids, limits=Limits.of(ctx.settings)
        )
    if as_json:
        click.echo(json.dumps(dict(tally)))
    else:
        click.echo(", ".join(f"{n} {k}" for k, n in sorted(tally.items())) or "nothing to replay")


def read_campaign_file(
    settings: Settings, file: Path, image_dirs: tuple[Path, ...] = ()
) -> list[NewJob]:
    """A campaign file read under the settings' image folders and URL policy (`submit`, `demo`)."""
    return read_submission(settings, file, image_dirs)[1]


def read_submission(
    settings: Settings, file: Path, image_dirs: tuple[Path, ...] = (), *, allow_large: bool = False
) -> tuple[Spec | None, list[NewJob]]:
    """A campaign file's jobs, and its spec when it is one (.yaml, .yml, .json), read under the
    settings' image folders, URL policy and matrix cap."""
    from remixq.campaigns import read_campaign
    from remixq.local_images import LocalImages
    from remixq.specs import SUFFIXES, load_spec_file, read_spec
    from remixq.url_policy import UrlPolicy

    urls = UrlPolicy(refuse_private=settings.refuse_private_urls)
    folders = (*settings.image_dirs, *image_dirs)
    if file.suffix.lower() in SUFFIXES:
        spec = load_spec_file(file)
        new_jobs = read_spec(
            spec,
            local_images=LocalImages(file.parent, tuple(folders)),
            urls=urls,
            max_jobs=settings.max_matrix_jobs,
            allow_large=allow_large,
        )
        return spec, new_jobs
    return None, read_campaign(file, image_dirs=folders, urls=urls)


def _task_uuid(value: str | None) -> str | None:
    if value is None:
        return None
    import uuid

    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidInput([FieldError("--job", value, "a taskUUID (UUID)")]) from None
