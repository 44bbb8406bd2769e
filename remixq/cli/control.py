"""`remixq resume`: lift the pause of campaigns whose account the provider refused (401/402/403)
and hand their waiting jobs to the broker."""

from __future__ import annotations

import json

import click

from remixq.cli.context import Context, pass_context
from remixq.errors import InvalidInput


@click.command()
@click.argument("campaign", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print {campaigns, jobs} as JSON.")
@pass_context
def resume(ctx: Context, campaign: str | None, as_json: bool) -> None:
    """Resume CAMPAIGN (id or name; default: every paused campaign) once the account is usable
    again: its pending jobs go to the broker, and every worker's shared pause is lifted."""
    from remixq import jobs
    from remixq.db import database, transaction
    from remixq.reports import find_campaign
    from remixq.submission import no_campaign
    from worker.app import enqueuer
    from worker.runtime import Runtime

    settings = ctx.settings
    with database(settings) as sessions:
        with transaction(sessions) as session:
            campaign_id = None
            if campaign is not None:
                found = find_campaign(session, campaign)
                if found is None:
                    raise InvalidInput([no_campaign(campaign)])
                campaign_id = found.id
            resumed, job_ids = jobs.resume_campaigns(session, campaign_id=campaign_id)
        if resumed:
            Runtime(settings).limit.resume()
        if job_ids:
            enqueuer(settings)(sessions, job_ids)
    if as_json:
        click.echo(json.dumps({"campaigns": resumed, "jobs": len(job_ids)}))
    elif not resumed:
        what = "no campaign is" if campaign is None else f"campaign {campaign!r} is not"
        click.echo(f"nothing to resume: {what} paused")
    else:
        ids = ", ".join(map(str, resumed))
        click.echo(f"resumed campaign(s) {ids}: {len(job_ids)} jobs enqueued")
