"""`remixq costs` (estimated, reserved and actual spend, by campaign, model, day or variant) and
`remixq budget` (a campaign's budget changed, its budget pause lifted)."""

from __future__ import annotations

import json

import click

from remixq.cli.context import Context, broker_unreachable, pass_context
from remixq.errors import InvalidInput


@click.command()
@click.option("--campaign", "campaign", help="Only this campaign (a name, or an id written #12).")
@click.option(
    "--by",
    type=click.Choice(["campaign", "model", "day", "variant"]),
    default="campaign",
    show_default=True,
    help="Group by campaign, model, UTC day (jobs on the day stored, images on the day they "
    "came) or variant (a spec's matrix values).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"by", "campaign", "rows": [{"key", "jobs", "images", "estimated_usd", '
    '"reserved_usd", "spent_usd", "overrun_usd"}], "total"} (decimal strings).',
)
@pass_context
def costs(ctx: Context, campaign: str | None, by: str, as_json: bool) -> None:
    """Estimated, reserved and actual spend (USD): what the price table said each job would
    cost, what open jobs may still cost, what the provider reported, and what jobs cost beyond
    their estimates. SQL aggregates: constant memory on campaigns of any size."""
    from remixq.cost_reports import costs as cost_report
    from remixq.db import database
    from remixq.reports import find_campaign
    from remixq.submission import no_campaign

    with database(ctx.settings) as sessions, sessions() as session:
        campaign_id = None
        if campaign is not None:
            found = find_campaign(session, campaign)
            if found is None:
                raise InvalidInput([no_campaign(campaign)])
            campaign_id = found.id
        report = cost_report(session, by=by, campaign_id=campaign_id)
    if as_json:
        click.echo(json.dumps(report.to_json(campaign), indent=2))
        return
    from remixq.cli.tables import print_costs

    print_costs(by, [(line.label, line.spend) for line in report.lines], report.total)


@click.command()
@click.argument("campaign")
@click.argument("usd")
@click.option("--json", "as_json", is_flag=True, help="Print the campaign's budget figures.")
@pass_context
def budget(ctx: Context, campaign: str, usd: str, as_json: bool) -> None:
    """Set CAMPAIGN's budget to USD (a decimal, e.g. 25.00; `none`: no budget). A budget below
    what its jobs reserve and spent already is refused. A campaign its budget paused (an
    overrun) goes on once the new budget covers what it has committed."""
    from remixq.budgets import check_budget
    from remixq.budgets import usd as money
    from remixq.control import set_budget
    from remixq.db import database, transaction
    from remixq.reports import find_campaign
    from remixq.submission import hand_over, no_campaign
    from worker.app import enqueuer

    amount = None if usd.lower() == "none" else check_budget(usd, "USD")
    with database(ctx.settings) as sessions:
        with transaction(sessions) as session:
            found = find_campaign(session, campaign)
            if found is None:
                raise InvalidInput([no_campaign(campaign)])
            changed = set_budget(session, found.id, amount)
        broker_error = hand_over(enqueuer(ctx.settings), sessions, changed.job_ids)
    state = changed.state
    figures = state.spend
    if as_json:
        left = state.left
        click.echo(
            json.dumps(
                {
                    "campaign_id": state.campaign_id,
                    "name": state.name,
                    "budget_usd": None if state.budget is None else money(state.budget),
                    "reserved_usd": money(figures.reserved),
                    "spent_usd": money(figures.spent),
                    "budget_left_usd": None if left is None else money(left),
                    "resumed": changed.resumed,
                    "enqueued": broker_error is None,
                    "broker_error": broker_error,
                }
            )
        )
        return
    if state.budget is None:
        click.echo(f"campaign {state.name!r}: no budget")
    else:
        click.echo(
            f"campaign {state.name!r}: budget {money(state.budget)} USD;"
            f" {money(figures.reserved)} reserved, {money(figures.spent)} spent,"
            f" {money(state.left)} left"
        )
    if changed.resumed:
        click.echo(f"resumed: {len(changed.job_ids)} waiting job(s) handed to the broker")
        if broker_error is not None:
            click.echo(broker_unreachable(broker_error))
