"""Readable tables for people (rich); machines use `--json`.

Ids and money are never cut: a job's row carries its full taskUUID and each image gets a row of
its own under it (full imageUUID, seed, cost), so that at 80 columns the ids and the amounts keep
their width and the model and status columns wrap instead. Error messages follow the table, one
per failed job.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

_STYLES = {"completed": "green", "failed": "red", "submitted": "cyan", "submitting": "yellow"}


def print_report(
    report: dict[str, Any], console: Console | None = None, *, history: bool = False
) -> None:
    """One row per job (its latest attempt) and one per image, then the totals; with `history`,
    the attempts a retry superseded as well."""
    console = console or Console()
    title = f"campaign {report['name']} (id {report['campaign_id']})"
    console.print(_jobs_table(title, report["jobs"]))
    superseded = report.get("superseded", [])
    if history and superseded:
        console.print(_jobs_table("superseded attempts, each with its retry", superseded))
    counts = ", ".join(f"{n} {status}" for status, n in report["counts"].items())
    console.print(
        f"{len(report['jobs'])} jobs ({counts}); {report['images']} images; "
        f"total cost [bold]{report['cost_usd']} USD[/]"
    )
    if report.get("paused_at"):
        console.print(
            f"[yellow]paused since {report['paused_at']}[/]: {report['pause_reason']} "
            "(remixq resume, once the account is usable)"
        )
    if superseded:
        more = "listed above" if history else "see --history"
        console.print(f"{len(superseded)} superseded attempt(s) retried ({more}); cost included")
    shown = report["jobs"] + (superseded if history else [])
    for job in shown:
        if job["error"]:
            console.print(
                f"[red]{job['task_uuid']}[/]: {job['error']['code']}: {job['error']['message']}",
                overflow="fold",
            )


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
        table.add_row(job["task_uuid"], "\n".join(lines), job["cost_usd"])
        if job.get("retried_as"):
            table.add_row(f"→ {job['retried_as']}", "its retry", "")
        for image in job["images"]:
            seed = "-" if image["seed"] is None else f"seed {image['seed']}"
            table.add_row(f"  {image['image_uuid']}", seed, image["cost"] or "-")
    return table
