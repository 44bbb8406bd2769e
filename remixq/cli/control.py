"""`remixq resume`: lift the pause of campaigns whose account the provider refused (401/402/403)
and hand their waiting jobs to the broker."""

from __future__ import annotations

import json

import click

from remixq.cli.context import Context, broker_unreachable, pass_context


@click.command()
@click.argument("campaign", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print {campaigns, jobs} as JSON.")
@pass_context
def resume(ctx: Context, campaign: str | None, as_json: bool) -> None:
    """Resume CAMPAIGN (id or name; default: every paused campaign) once the account is usable
    again: its pending jobs go to the broker, and every worker's shared pause is lifted."""
    from remixq.submission import resume_and_enqueue
    from worker.app import enqueuer
    from worker.runtime import Runtime

    settings = ctx.settings
    resumed = resume_and_enqueue(
        settings,
        campaign=campaign,
        enqueue=enqueuer(settings),
        lift_shared_pause=lambda: Runtime(settings).limit.resume(),
    )
    job_ids = resumed.job_ids
    if as_json:
        answer = {
            "campaigns": resumed.campaign_ids,
            "jobs": len(job_ids),
            "enqueued": resumed.broker_error is None,
            "broker_error": resumed.broker_error,
        }
        click.echo(json.dumps(answer))
    elif not resumed.campaign_ids:
        what = "no campaign is" if campaign is None else f"campaign {campaign!r} is not"
        click.echo(f"nothing to resume: {what} paused")
    else:
        ids = ", ".join(map(str, resumed.campaign_ids))
        handed = (
            "enqueued"
            if resumed.broker_error is None
            else f"stored; {broker_unreachable(resumed.broker_error)}"
        )
        click.echo(f"resumed campaign(s) {ids}: {len(job_ids)} jobs {handed}")
