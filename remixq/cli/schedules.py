"""`remixq schedule ...`: recurring campaigns. Each command parses its arguments, calls one
domain function (remixq.schedules) and prints the answer; the firing itself runs under
`remixq beat`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from remixq.cli.context import Context, broker_unreachable, pass_context
from remixq.errors import FieldError, InvalidInput

if TYPE_CHECKING:
    from remixq.schedules.firing import Fired
    from remixq.schedules.store import OccurrenceView, ScheduleView


@click.group()
def schedule() -> None:
    """Recurring campaigns: a cron expression in a time zone and a campaign file, stored when
    the schedule is added. Under `remixq beat` each occurrence makes one campaign, named
    NAME@<occurrence time>, exactly once however many beats run."""


def _option_int(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput([FieldError(field, value, "a whole number")]) from None


@schedule.command()
@click.argument("name")
@click.option("--cron", "cron", required=True, help='Cron expression, e.g. "0 9 * * MON".')
@click.option(
    "--tz",
    "timezone",
    default="UTC",
    show_default=True,
    help="IANA time zone the expression is read in, e.g. Europe/Berlin.",
)
@click.option(
    "--file",
    "file",
    required=True,
    type=click.Path(path_type=Path),
    help="Campaign file (JSONL, CSV, or a .yaml/.yml/.json spec); its content is stored now.",
)
@click.option(
    "--catch-up",
    "catch_up",
    default="latest",
    show_default=True,
    help="Missed occurrences (no beat ran at their time): skip, latest (fire the most recent) "
    "or all (up to --catch-up-max).",
)
@click.option(
    "--catch-up-max",
    "catch_up_max",
    metavar="N",
    help="The most missed occurrences `all` fires. Default: REMIXQ_SCHEDULE_CATCH_UP_MAX (10).",
)
@click.option(
    "--budget",
    "budget_usd",
    metavar="USD",
    help="Each occurrence's campaign's budget (default: the spec's budget_usd, if any).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
@pass_context
def add(
    ctx: Context,
    name: str,
    cron: str,
    timezone: str,
    file: Path,
    catch_up: str,
    catch_up_max: str | None,
    budget_usd: str | None,
    as_json: bool,
) -> None:
    """Add schedule NAME: FILE is checked as each occurrence will read it (image fields must be
    references, not local paths; no taskUUIDs) and its content stored; a later edit of FILE
    changes nothing (`schedule update --file` does). Nothing is stored if anything is wrong."""
    from remixq.db import database, transaction, utcnow
    from remixq.schedules import store
    from remixq.schedules.sources import Rules, read_file

    settings = ctx.settings
    source: str | InvalidInput
    try:
        source, source_name = read_file(file)
    except InvalidInput as exc:
        source, source_name = exc, file.name
    cap = _option_int(catch_up_max, "--catch-up-max")
    definition = store.check_definition(
        name=name,
        cron=cron,
        timezone=timezone,
        source=source,
        source_name=source_name,
        budget_usd=budget_usd,
        catch_up=catch_up,
        catch_up_max=settings.schedule_catch_up_max if cap is None else cap,
        rules=Rules.of(settings),
    )
    with database(settings) as sessions:
        with transaction(sessions) as session:
            added = store.add(session, definition, now=utcnow())
            added_name = added.name
        with sessions() as session:
            found = store.view(session, added_name)
    if as_json:
        click.echo(json.dumps(found.to_json()))
        return
    click.echo(
        f"schedule {found.name!r} added: {_when_it_runs(found)}; next occurrence"
        f" {_local(found, found.next_at)}"
    )


def _when_it_runs(found: ScheduleView) -> str:
    from remixq.budgets import usd

    budget = "" if found.budget_usd is None else f", budget {usd(found.budget_usd)} USD each"
    cap = f" (at most {found.catch_up_max})" if found.catch_up == "all" else ""
    return (
        f'"{found.cron}" in {found.timezone}, file {found.source_name}{budget},'
        f" catch-up {found.catch_up}{cap}"
    )


def _local(found: ScheduleView, at: Any) -> str:
    from remixq.schedules.cron import zone

    if at is None:
        return "none (paused)" if found.paused_at is not None else "none"
    return str(at.astimezone(zone(found.timezone)).isoformat())


@schedule.command()
@click.argument("name")
@click.option("--cron", "cron", help="A new cron expression (starts again from now).")
@click.option("--tz", "timezone", help="A new time zone (starts again from now).")
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path),
    help="A new campaign file: its content is stored and used from the next occurrence on.",
)
@click.option("--catch-up", "catch_up", help="skip, latest or all.")
@click.option("--catch-up-max", "catch_up_max", metavar="N")
@click.option("--budget", "budget_usd", metavar="USD", help="A new budget per occurrence.")
@click.option("--no-budget", is_flag=True, help="No budget of the schedule's own any more.")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def update(
    ctx: Context,
    name: str,
    cron: str | None,
    timezone: str | None,
    file: Path | None,
    catch_up: str | None,
    catch_up_max: str | None,
    budget_usd: str | None,
    no_budget: bool,
    as_json: bool,
) -> None:
    """Change schedule NAME: what is given, checked as `add` checks it (nothing changed on a
    refusal). A new --cron or --tz starts again from the first occurrence after now."""
    from remixq.budgets import KEEP
    from remixq.db import database, transaction, utcnow
    from remixq.schedules import store
    from remixq.schedules.sources import Rules, read_file

    if budget_usd is not None and no_budget:
        raise click.UsageError("give --budget or --no-budget, not both")
    source = read_file(file) if file is not None else None
    budget: object = KEEP if budget_usd is None and not no_budget else budget_usd
    with database(ctx.settings) as sessions:
        with transaction(sessions) as session:
            store.change(
                session,
                name,
                now=utcnow(),
                rules=Rules.of(ctx.settings),
                cron=cron,
                timezone=timezone,
                source=source,
                budget_usd=budget,
                catch_up=catch_up,
                catch_up_max=_option_int(catch_up_max, "--catch-up-max"),
            )
        with sessions() as session:
            found = store.view(session, name)
    if as_json:
        click.echo(json.dumps(found.to_json()))
        return
    click.echo(
        f"schedule {found.name!r} updated: {_when_it_runs(found)}; next occurrence"
        f" {_local(found, found.next_at)}"
    )


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the schedules.")
@pass_context
def list_(ctx: Context, as_json: bool) -> None:
    """Every schedule: its cron expression and zone, its next and last occurrence, its policy."""
    from remixq.db import database
    from remixq.schedules import store

    with database(ctx.settings) as sessions, sessions() as session:
        found = store.views(session)
    if as_json:
        click.echo(json.dumps([view.to_json() for view in found], indent=2))
        return
    if not found:
        click.echo("no schedules (remixq schedule add NAME --cron ... --file ...)")
        return
    from rich.console import Console

    table = _table("name", "cron", "time zone", "next", "last", "catch-up", "fired", "skipped")
    for view in found:
        table.add_row(
            view.name,
            view.cron,
            view.timezone,
            _local(view, view.next_at),
            _last(view.last),
            view.catch_up,
            str(view.fired),
            str(view.skipped),
        )
    Console().print(table)


def _last(last: OccurrenceView | None) -> str:
    if last is None:
        return "-"
    what = last.status
    if last.campaign is not None:
        what = f"{last.campaign.name} {last.campaign.outcome}"
    return f"{last.local_at.isoformat()} {what}"


@schedule.command()
@click.argument("name")
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=1000),
    default=50,
    show_default=True,
    help="The most occurrences of the history listed, the latest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the schedule and its history.")
@pass_context
def show(ctx: Context, name: str, limit: int, as_json: bool) -> None:
    """Schedule NAME and its history: each occurrence fired (its campaign's status, images and
    cost) or skipped (and why), the latest first."""
    from remixq.db import database
    from remixq.schedules import store

    with database(ctx.settings) as sessions, sessions() as session:
        found = store.view(session, name)
        occurrences = store.history(session, store.find(session, name), limit=limit)
    if as_json:
        document = found.to_json() | {"history": [o.to_json() for o in occurrences]}
        click.echo(json.dumps(document, indent=2))
        return
    state = "paused" if found.paused_at is not None else "active"
    click.echo(f"schedule {found.name!r} ({state}): {_when_it_runs(found)}")
    click.echo(
        f"next occurrence {_local(found, found.next_at)}; {found.fired} fired, {found.skipped}"
        " skipped"
    )
    if not occurrences:
        click.echo("no occurrence yet")
        return
    for occurrence in occurrences:
        row = occurrence.to_json()
        made = ""
        if row["campaign"] is not None:
            made = (
                f" {row['campaign']} ({row['campaign_status']}: {row['jobs']} jobs,"
                f" {row['images']} images, {row['cost_usd']} USD)"
            )
        click.echo(f"{row['occurrence_at']}  {row['status']}{made}: {row['reason']}")


def _table(*columns: str) -> Any:
    """A table whose cells wrap, never cut: names and times keep every character."""
    from rich.table import Table

    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


@schedule.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print {name, paused}.")
@pass_context
def pause(ctx: Context, name: str, as_json: bool) -> None:
    """Pause schedule NAME: none of its occurrences fires until `schedule resume NAME`. Its
    campaigns already made go on (`remixq pause CAMPAIGN` holds one)."""
    from remixq.schedules import store

    changed = _act(ctx, lambda session, now: store.pause(session, name, now=now))
    if as_json:
        click.echo(json.dumps({"name": name, "paused": changed}))
    elif changed:
        click.echo(f"schedule {name!r} paused: nothing fires until remixq schedule resume {name}")
    else:
        click.echo(f"nothing to pause: schedule {name!r} is paused already")


@schedule.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print {name, resumed, next}.")
@pass_context
def resume(ctx: Context, name: str, as_json: bool) -> None:
    """Resume schedule NAME from its next occurrence after now: the occurrences of the pause
    are not caught up."""
    from remixq.db import database
    from remixq.schedules import store

    changed = _act(ctx, lambda session, now: store.resume(session, name, now=now))
    with database(ctx.settings) as sessions, sessions() as session:
        found = store.view(session, name)
    if as_json:
        click.echo(
            json.dumps({"name": name, "resumed": changed, "next": _local(found, found.next_at)})
        )
    elif changed:
        click.echo(f"schedule {name!r} resumed: next occurrence {_local(found, found.next_at)}")
    else:
        click.echo(f"nothing to resume: schedule {name!r} is not paused")


@schedule.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print {name, removed, occurrences}.")
@pass_context
def remove(ctx: Context, name: str, as_json: bool) -> None:
    """Remove schedule NAME and its history. Its campaigns stay, and run on."""
    from remixq.schedules import store

    occurrences = _act(ctx, lambda session, _now: store.remove(session, name))
    if as_json:
        click.echo(json.dumps({"name": name, "removed": True, "occurrences": occurrences}))
    else:
        click.echo(
            f"schedule {name!r} removed, with its history of {occurrences} occurrence(s); its"
            " campaigns stay"
        )


def _act(ctx: Context, action: Any) -> Any:
    from remixq.db import database, transaction, utcnow

    with database(ctx.settings) as sessions, transaction(sessions) as session:
        return action(session, utcnow())


@schedule.command()
@click.argument("name")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {name, occurrence_at, campaign_id, campaign, jobs, enqueued, broker_error}.",
)
@pass_context
def run(ctx: Context, name: str, as_json: bool) -> None:
    """Fire one occurrence of schedule NAME now (paused or not), besides its own times: its
    campaign is made from the stored file and its jobs enqueued, as `submit` does."""
    from remixq.db import database
    from remixq.pricing import PriceTable
    from remixq.schedules.firing import run_now
    from remixq.schedules.sources import Rules
    from worker.app import enqueuer

    settings = ctx.settings
    with database(settings) as sessions:
        fired = run_now(
            sessions,
            name,
            rules=Rules.of(settings),
            prices=PriceTable.configured(settings),
            enqueue=enqueuer(settings),
        )
    _print_fired(fired, as_json)


def _print_fired(fired: Fired, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "name": fired.schedule,
                    "occurrence_at": fired.occurrence_at.isoformat(),
                    "campaign_id": fired.campaign_id,
                    "campaign": fired.campaign,
                    "jobs": len(fired.job_ids),
                    "enqueued": fired.broker_error is None,
                    "broker_error": fired.broker_error,
                }
            )
        )
        return
    made = f"campaign {fired.campaign!r} (id {fired.campaign_id}): {len(fired.job_ids)} jobs"
    if fired.broker_error is None:
        click.echo(f"{made} enqueued")
    else:
        click.echo(f"stored {made}; {broker_unreachable(fired.broker_error)}")
