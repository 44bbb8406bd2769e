"""`remixq watch CAMPAIGN` (and `remixq submit --watch`): a live display of a campaign's jobs by
status, images, spend against its budget and an ETA from the rate observed, until every job is
final. On a terminal it is redrawn in place (rich.live); otherwise (a pipe, a log file) one line
is printed per change. Each refresh is the summary's aggregates (a few SQL queries), never the
jobs themselves."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import click
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from remixq.cli.context import Context, pass_context
from remixq.config import Settings
from remixq.errors import InvalidInput
from remixq.reports import CampaignSummary, money
from remixq.states import SETTLED, JobStatus

# As `remixq status`: 3 when a job's latest attempt failed.
EXIT_FAILED_JOBS = 3
EXIT_INTERRUPTED = 130
_ORDER = [status.value for status in JobStatus]
_Reader = Callable[[], tuple[CampaignSummary, str]]  # a refresh: the summary and its ETA


@click.command()
@click.argument("campaign")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@pass_context
def watch(ctx: Context, campaign: str, interval: float) -> None:
    """Follow CAMPAIGN (a name, or an id written #12) until every job is final (completed,
    failed or cancelled): jobs by status, images, spend against the budget, and an ETA from
    the rate observed. Exit 0, or 3 when a job's latest attempt failed."""
    sys.exit(watch_campaign(ctx.settings, campaign, interval=interval))


@dataclass
class Rate:
    """Jobs finished per second since the watch began, and what that leaves to wait."""

    started: float
    finished_then: int | None = None

    def eta(self, finished: int, total: int, now: float) -> float | None:
        """Seconds until every job is final at the rate observed (None: no rate yet)."""
        if self.finished_then is None:
            self.finished_then = finished
        done = finished - self.finished_then
        if done <= 0 or now <= self.started:
            return None
        return (total - finished) / (done / (now - self.started))


def _finished(summary: CampaignSummary) -> int:
    return sum(n for status, n in summary.counts.items() if status in SETTLED)


def _eta_text(seconds: float | None, running: bool) -> str:
    if not running:
        return "done"
    if seconds is None:
        return "ETA: waiting for a first result"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"


def progress_line(summary: CampaignSummary) -> str:
    """The campaign's progress in one line, without the ETA (what changes are detected by)."""
    counts = ", ".join(
        f"{summary.counts[status]} {status}" for status in _ORDER if summary.counts.get(status)
    )
    spend = f"spent {money(summary.spend.spent)} USD"
    if summary.spend.spent_estimated:
        spend += f" ({money(summary.spend.spent_estimated)} of it estimated)"
    if summary.budget_usd is not None:
        spend += f" of {money(summary.budget_usd)} (reserved {money(summary.spend.reserved)})"
    if summary.spend.overrun:
        spend += f", overrun {money(summary.spend.overrun)}"
    line = (
        f"{summary.name} (#{summary.id}): {_finished(summary)}/{summary.jobs} final"
        f" ({counts or 'no jobs'}); {summary.images} images; {spend}"
    )
    if summary.paused:
        line += f"; paused: {summary.pause_reason}"
    return line


def _panel(summary: CampaignSummary, eta: str) -> Group:
    table = Table(
        title=f"campaign {summary.name} (id {summary.id})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("status")
    table.add_column("jobs", justify="right")
    for status in _ORDER:
        if summary.counts.get(status):
            table.add_row(status, str(summary.counts[status]))
    table.add_row("[bold]all[/]", f"[bold]{summary.jobs}[/]")
    lines = [
        f"{_finished(summary)} of {summary.jobs} jobs final; {summary.images} images; {eta}",
        f"spent {money(summary.spend.spent)} USD"
        + (
            f" ({money(summary.spend.spent_estimated)} of it estimated)"
            if summary.spend.spent_estimated
            else ""
        )
        + f", reserved {money(summary.spend.reserved)}"
        + (
            f" of a budget of {money(summary.budget_usd)} ({money(summary.budget_left)} left)"
            if summary.budget_usd is not None
            else " (no budget)"
        ),
    ]
    if summary.spend.overrun:
        lines.append(f"[red]estimates overrun by {money(summary.spend.overrun)} USD[/]")
    if summary.paused:
        lines.append(f"[yellow]paused ({summary.paused_by}): {summary.pause_reason}[/]")
    return Group(table, *(Text.from_markup(line) for line in lines))


def watch_campaign(
    settings: Settings,
    ref: str,
    *,
    interval: float = 1.0,
    console: Console | None = None,
) -> int:
    """Follow the campaign `ref` until no latest attempt is open; the exit status (3 when one
    failed). A campaign paused (by request, the account or its budget) is followed on: its
    pause is shown, and a resume or a cancel moves it on."""
    from remixq.db import database
    from remixq.reports import campaign_summary, find_campaign
    from remixq.submission import no_campaign

    console = console or Console()
    with database(settings) as sessions:
        with sessions() as session:
            found = find_campaign(session, ref)
            if found is None:
                raise InvalidInput([no_campaign(ref)])
            campaign_id = found.id
        rate = Rate(time.monotonic())

        def read() -> tuple[CampaignSummary, str]:
            with sessions() as session:
                summary = campaign_summary(session, campaign_id)
            assert summary is not None  # campaigns are never deleted
            running = summary.outcome == "running"
            eta = rate.eta(_finished(summary), summary.jobs, time.monotonic())
            return summary, _eta_text(eta, running)

        try:
            if console.is_terminal:
                summary = _live(console, read, interval)
            else:
                summary = _lines(read, interval)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return EXIT_FAILED_JOBS if summary.counts.get(JobStatus.FAILED.value) else 0


def _live(console: Console, read: _Reader, interval: float) -> CampaignSummary:
    summary, eta = read()
    with Live(_panel(summary, eta), console=console, refresh_per_second=4) as live:
        while summary.outcome == "running":
            time.sleep(interval)  # the refresh period: each refresh is a few aggregates
            summary, eta = read()
            live.update(_panel(summary, eta))
    return summary


def _lines(read: _Reader, interval: float) -> CampaignSummary:
    last = None
    while True:
        summary, eta = read()
        line = progress_line(summary)
        if line != last:
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            click.echo(f"{stamp} {line}; {eta}")
            last = line
        if summary.outcome != "running":
            return summary
        time.sleep(interval)  # the refresh period: each refresh is a few aggregates

