"""Readable tables for people (rich); machines use `--json`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

_STYLES = {"completed": "green", "failed": "red", "submitted": "cyan", "submitting": "yellow"}


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    """One row per image (a job without images gets one row saying why), then the totals."""
    console = console or Console()
    table = Table(title=f"campaign {report['name']} (id {report['campaign_id']})")
    table.add_column("task", no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("image", no_wrap=True)
    table.add_column("seed", justify="right", no_wrap=True)
    table.add_column("cost USD", justify="right", no_wrap=True)
    for job in report["jobs"]:
        style = _STYLES.get(job["status"], "")
        status = f"[{style}]{job['status']}[/]" if style else job["status"]
        status += f" {job['results_received']}/{job['results_expected']}"
        first = (job["task_uuid"][:8], job["model"], status)
        if not job["images"]:
            error = job["error"]
            table.add_row(*first, f"[red]{error['code']}[/]" if error else "-", "", "")
        for index, image in enumerate(job["images"]):
            lead = first if index == 0 else ("", "", "")
            table.add_row(*lead, image["image_uuid"][:8], str(image["seed"]), image["cost"] or "-")
    console.print(table)
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
    for job in report["jobs"]:
        if job["error"]:
            console.print(
                f"[red]{job['task_uuid']}[/]: {job['error']['code']}: {job['error']['message']}"
            )
