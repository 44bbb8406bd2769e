"""Readable tables for people (rich); machines use `--json`.

Ids and money are never cut: a job's row carries its full taskUUID and each image gets a row of
its own under it (full imageUUID, seed, cost), so that at 80 columns the ids and the amounts keep
their width and the model and status columns wrap instead. Error messages follow the table, one
per failed job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from remixq.budgets import Spend
from remixq.reports import money
from remixq.specs import variant_label, variant_text

_STYLES = {
    "completed": "green",
    "failed": "red",
    "submitted": "cyan",
    "submitting": "yellow",
    "cancelled": "magenta",
}
_ASSET_STYLES = {"stored": "green", "pending": "yellow", "failed": "red", "refused": "red"}


def print_report(
    report: dict[str, Any],
    console: Console | None = None,
    *,
    history: bool = False,
    limit: int | None = None,
) -> None:
    """One row per job (its latest attempt) and one per image, then the totals; with `history`,
    the attempts a retry superseded as well. The job lists may be iterators (read as they are
    printed); `limit` caps the rows of each list, and the totals say how many were left out."""
    console = console or Console()
    title = f"campaign {report['name']} (id {report['campaign_id']})"
    jobs = list(islice(report["jobs"], limit))
    console.print(_jobs_table(title, jobs))
    total = sum(report["counts"].values())
    if total > len(jobs):
        console.print(
            f"(the first {len(jobs)} of {total} jobs; --limit 0 lists all, --json or "
            "remixq export for machines)"
        )
    superseded: list[dict[str, Any]] = []
    if history:
        superseded = list(islice(report.get("superseded", []), limit))
        if superseded:
            console.print(_jobs_table("superseded attempts, each with its retry", superseded))
    superseded_count = report.get("superseded_count", len(superseded))
    counts = ", ".join(f"{n} {status}" for status, n in report["counts"].items())
    console.print(
        f"{total} jobs ({counts}); {report['images']} images; "
        f"total cost [bold]{report['cost_usd']} USD[/]" + _estimated_part(report)
    )
    if report.get("assets"):
        by_status = ", ".join(f"{n} {status}" for status, n in report["assets"].items())
        console.print(f"image copies: {by_status}")
    for job in jobs + superseded:
        for image in job["images"]:
            if image.get("asset_status") in ("failed", "refused"):
                console.print(
                    f"[red]{image['image_uuid']}[/]: copy {image['asset_status']}:"
                    f" {image['asset_reason']}",
                    overflow="fold",
                )
    if report.get("cancelled_at"):
        console.print(
            f"[yellow]cancelled at {report['cancelled_at']}[/]: no job is submitted any more; "
            "jobs the provider had accepted still land"
        )
    if report.get("budget_usd") is not None:
        console.print(
            f"budget {report['budget_usd']} USD: {report['reserved_usd']} reserved,"
            f" {report['spent_usd']} spent, {report['budget_left_usd']} left"
            + (f"; [red]overrun {report['overrun_usd']} USD[/]" if _positive(report) else "")
        )
    elif _positive(report):
        console.print(f"[red]estimates overrun by {report['overrun_usd']} USD[/]")
    if report.get("paused_at"):
        if report.get("paused_by") == "budget":
            console.print(
                f"[yellow]paused since {report['paused_at']}[/]: {report['pause_reason']}"
            )
        elif report.get("paused_by") == "user":
            console.print(
                f"[yellow]paused since {report['paused_at']}[/] on request "
                f"(remixq resume {report['campaign_id']})"
            )
        else:
            console.print(
                f"[yellow]paused since {report['paused_at']}[/]: {report['pause_reason']} "
                "(remixq resume, once the account is usable)"
            )
    if superseded_count:
        more = "listed above" if history else "see --history"
        console.print(f"{superseded_count} superseded attempt(s) retried ({more}); cost included")
    for job in jobs + superseded:
        if job["error"]:
            console.print(
                f"[red]{job['task_uuid']}[/]: {job['error']['code']}: {job['error']['message']}",
                overflow="fold",
            )


def print_campaigns(summaries: list[Any], console: Console | None = None) -> None:
    """One row per campaign (`remixq.reports.CampaignSummary`): its jobs by status, images,
    cost, and when it started and finished."""
    console = console or Console()
    table = Table(title="campaigns", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("jobs by status", overflow="fold")
    table.add_column("images", justify="right")
    table.add_column("cost USD", justify="right", no_wrap=True)
    table.add_column("budget / left", justify="right", no_wrap=True)
    table.add_column("started / finished", no_wrap=True)
    for summary in summaries:
        by_status = ", ".join(
            f"[{_STYLES[status]}]{n} {status}[/]" if status in _STYLES else f"{n} {status}"
            for status, n in summary.counts.items()
        )
        state = summary.outcome
        if summary.paused:
            state += ", paused" + _BY.get(summary.paused_by or "", "")
        budget = "-"
        if summary.budget_usd is not None:
            budget = f"{money(summary.budget_usd)}\n{money(summary.budget_left)}"
        finished = _minute(summary.finished_at) if summary.finished_at else state
        table.add_row(
            str(summary.id),
            summary.name,
            by_status or "no jobs",
            str(summary.images),
            money(summary.cost_usd),
            budget,
            f"{_minute(summary.created_at)}\n{finished}",
        )
    console.print(table)
    if not summaries:
        console.print("no campaign yet (remixq submit FILE)")


_BY = {"user": " on request", "budget": " by its budget"}


def _positive(report: dict[str, Any]) -> bool:
    return Decimal(report.get("overrun_usd") or 0) > 0


def print_costs(
    by: str, rows: list[tuple[str, Spend]], total: Spend, console: Console | None = None
) -> None:
    """`remixq costs`: one row per group, then the total; amounts whole, in USD."""
    console = console or Console()
    table = Table(title=f"costs by {by} (USD)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(by, overflow="fold")
    columns = ["jobs", "images", "estimated", "reserved", "spent", "overrun"]
    # The part of the spend that is the price table's (a provider that reports no cost).
    with_estimates = bool(total.spent_estimated)
    if with_estimates:
        columns.append("spent, estimated")
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for label, figures in [*rows, ("total", total)]:
        cells = [
            f"[bold]{label}[/]" if label == "total" and figures is total else label,
            str(figures.jobs),
            str(figures.images),
            money(figures.estimated),
            money(figures.reserved),
            money(figures.spent),
            f"[red]{money(figures.overrun)}[/]" if figures.overrun else money(figures.overrun),
        ]
        if with_estimates:
            cells.append(money(figures.spent_estimated))
        table.add_row(*cells)
    console.print(table)
    if with_estimates:
        console.print(
            "spent, estimated: the price table's cost of images whose provider reports none"
            " (Ideogram's own API)"
        )


def print_variants(
    head: dict[str, Any], variants: list[Any], console: Console | None = None
) -> None:
    """`status --by variant`: one row per variant (`remixq.variants.VariantSummary`, its axis
    values or its explicit job), its latest attempts by status, its images and USD (every
    attempt), then the campaign's totals."""
    console = console or Console()
    title = f"campaign {head['name']} (id {head['campaign_id']}) by variant"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("variant", overflow="fold")
    table.add_column("jobs by status", overflow="fold")
    table.add_column("images", justify="right", no_wrap=True)
    for column in ("estimated", "spent USD", "overrun"):
        table.add_column(column, justify="right", no_wrap=True)
    for summary in variants:
        by_status = ", ".join(
            f"[{_STYLES[status]}]{n} {status}[/]" if status in _STYLES else f"{n} {status}"
            for status, n in sorted(summary.counts.items())
        )
        figures = summary.spend
        overrun = money(figures.overrun)
        table.add_row(
            "(none)" if summary.variant is None else variant_text(summary.variant),
            by_status,
            str(figures.images),
            money(figures.estimated),
            money(figures.spent),
            f"[red]{overrun}[/]" if figures.overrun else overrun,
        )
    console.print(table)
    total = sum(head["counts"].values())
    console.print(
        f"{len(variants)} variants, {total} jobs; {head['images']} images; "
        f"total cost [bold]{head['cost_usd']} USD[/]"
    )


def _estimated_part(report: dict[str, Any]) -> str:
    """How much of the cost is the price table's estimate (a provider that reports none)."""
    estimated = report.get("spent_estimated_usd")
    if not estimated or Decimal(estimated) == 0:
        return ""
    return f", of which {estimated} USD estimated (the provider reports no cost)"


def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _jobs_table(title: str, jobs: list[dict[str, Any]]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("task / image", no_wrap=True)
    table.add_column("status, model / seed", overflow="fold", min_width=16)
    table.add_column("cost USD", justify="right", no_wrap=True)
    for job in jobs:
        style = _STYLES.get(job["status"], "")
        status = f"[{style}]{job['status']}[/]" if style else job["status"]
        lines = [f"{status} {job['results_received']}/{job['results_expected']}", job["model"]]
        if job.get("retry_of"):
            lines.append("a retry")
        if job.get("variant") is not None:
            lines.append(variant_text(job["variant"]))
        cost = job["cost_usd"] + (" (est.)" if job.get("cost_estimated") else "")
        table.add_row(job["task_uuid"], "\n".join(lines), cost)
        if job.get("retried_as"):
            table.add_row(f"→ {job['retried_as']}", "its retry", "")
        for image in job["images"]:
            seed = "-" if image["seed"] is None else f"seed {image['seed']}"
            asset = image.get("asset_status")
            if asset:
                style = _ASSET_STYLES.get(asset, "")
                seed += f", [{style}]{asset}[/]" if style else f", {asset}"
            table.add_row(f"  {image['image_uuid']}", seed, image["cost"] or "-")
    return table


def print_estimate(estimate: Any, source: str, console: Console | None = None) -> None:
    """A dry run's figures (`remixq.pricing.Estimate`): one table per model, one per variant
    (its axis values, or its explicit job), then the totals and where the prices came from."""
    console = console or Console()
    by_model = Table(title="by model", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    by_model.add_column("model", no_wrap=True)
    for column in ("jobs", "images", "estimated USD"):
        by_model.add_column(column, justify="right", no_wrap=True)
    for model, tally in estimate.by_model.items():
        by_model.add_row(model, str(tally.jobs), str(tally.images), money(tally.cost))
    console.print(by_model)
    by_variant = Table(
        title="by variant", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    by_variant.add_column("variant", overflow="fold")
    for column in ("jobs", "images", "estimated USD"):
        by_variant.add_column(column, justify="right", no_wrap=True)
    for variant, tally in estimate.by_variant.values():
        by_variant.add_row(
            variant_label(variant), str(tally.jobs), str(tally.images), money(tally.cost)
        )
    console.print(by_variant)
    total = estimate.total
    console.print(
        f"dry run: {total.jobs} jobs, {total.images} images, estimated cost "
        f"[bold]{money(total.cost)} USD[/] ({source}); nothing stored",
        highlight=False,
    )
