"""`remixq cancel`, `pause` and `resume`: stop a campaign's unsubmitted jobs for good, hold them,
or let them (and the campaigns whose account the provider refused, 401/402/403) go on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from remixq.cli.context import Context, broker_unreachable, pass_context
from remixq.errors import InvalidInput

T = TypeVar("T")


@click.command()
@click.argument("campaign", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print {campaigns, jobs} as JSON.")
@pass_context
def resume(ctx: Context, campaign: str | None, as_json: bool) -> None:
    """Resume CAMPAIGN (id or name), paused on request (`remixq pause`) or because the provider
    refused the account; without CAMPAIGN, every campaign the account's refusal paused, once
    the account is usable again. Their pending jobs go to the broker, and when an account's
    pause was lifted, so is every worker's shared pause."""
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
        what = (
            "no campaign is paused by the account's refusal (name a campaign paused on request)"
            if campaign is None
            else f"campaign {campaign!r} is not"
        )
        click.echo(f"nothing to resume: {what}" + ("" if campaign is None else " paused"))
    else:
        ids = ", ".join(map(str, resumed.campaign_ids))
        handed = (
            "enqueued"
            if resumed.broker_error is None
            else f"stored; {broker_unreachable(resumed.broker_error)}"
        )
        click.echo(f"resumed campaign(s) {ids}: {len(job_ids)} jobs {handed}")


def _find(session: Any, ref: str) -> Any:
    from remixq.reports import find_campaign
    from remixq.submission import no_campaign

    found = find_campaign(session, ref)
    if found is None:
        raise InvalidInput([no_campaign(ref)])
    return found


def _act(ctx: Context, ref: str, action: Callable[[Any, int], T]) -> tuple[Any, T, Any]:
    """Find campaign `ref`, apply `action(session, campaign_id)` in one transaction, then read
    its summary after the commit: the campaign, what the action returned, the summary."""
    from remixq.db import database, transaction
    from remixq.reports import campaign_summary

    with database(ctx.settings) as sessions:
        with transaction(sessions) as session:
            found = _find(session, ref)
            result = action(session, found.id)
        with sessions() as session:
            summary = campaign_summary(session, found.id)
    assert summary is not None
    return found, result, summary


@click.command()
@click.argument("campaign")
@click.option("--json", "as_json", is_flag=True, help="Print {campaign_id, cancelled, summary}.")
@pass_context
def cancel(ctx: Context, campaign: str, as_json: bool) -> None:
    """Cancel CAMPAIGN (id or name): its pending and queued jobs, and those being submitted, are
    never submitted again. Jobs the provider already accepted still land and their cost counts.
    Cancelling a finished or cancelled campaign changes nothing (0 jobs)."""
    from remixq.control import cancel_campaign

    found, cancelled, summary = _act(ctx, campaign, cancel_campaign)
    if as_json:
        answer = {"campaign_id": found.id, "cancelled": cancelled, "summary": summary.to_json()}
        click.echo(json.dumps(answer))
        return
    landing = sum(summary.counts.get(s, 0) for s in ("submitting", "submitted"))
    still = f"; {landing} job(s) the provider accepted will still land" if landing else ""
    if cancelled:
        click.echo(f"campaign {found.name!r} (id {found.id}): {cancelled} job(s) cancelled{still}")
    else:
        why = "has finished" if summary.cancelled_at is None else "was cancelled already"
        click.echo(f"nothing to cancel: campaign {found.name!r} (id {found.id}) {why}{still}")


@click.command()
@click.argument("campaign")
@click.option("--json", "as_json", is_flag=True, help="Print {campaign_id, paused, summary}.")
@pass_context
def pause(ctx: Context, campaign: str, as_json: bool) -> None:
    """Pause CAMPAIGN (id or name): none of its jobs is submitted until `remixq resume CAMPAIGN`
    (jobs already being submitted land). The account probe never lifts this pause. Pausing a
    finished or cancelled campaign changes nothing."""
    from remixq.control import pause_campaign

    found, paused, summary = _act(ctx, campaign, pause_campaign)
    if as_json:
        answer = {"campaign_id": found.id, "paused": paused, "summary": summary.to_json()}
        click.echo(json.dumps(answer))
    elif paused:
        click.echo(
            f"campaign {found.name!r} (id {found.id}) paused: nothing of it is submitted until"
            f" remixq resume {found.id}"
        )
    else:
        why = (
            "it is paused on request already"
            if summary.paused_by == "user"
            else "it was cancelled"
            if summary.cancelled_at is not None
            else "it has no open job"
        )
        click.echo(f"nothing to pause: campaign {found.name!r} (id {found.id}): {why}")
