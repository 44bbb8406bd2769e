"""Readable tables for people (rich); machines use `--json`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

_STYLES = {"completed": "green", "failed": "red", "submitted": "cyan", "submitting": "yellow"}


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"campaign {report['name']} (id {report['campaign_id']})", show_lines=False)
    for column in ("task", "model", "status", "images", "seeds", "cost (USD)", "error"):
        table.add_column(column, overflow="fold")
    for job in report["jobs"]:
        style = _STYLES.get(job["status"], "")
        error = job["error"]
        table.add_row(
            job["task_uuid"][:8],
            job["model"],
            f"[{style}]{job['status']}[/]" if style else job["status"],
            f"{job['results_received']}/{job['results_expected']}",
            ", ".join(str(i["seed"]) for i in job["images"][:4])
            + (" …" if len(job["images"]) > 4 else ""),
            job["cost_usd"],
            f"{error['code']}: {error['message']}" if error else "",
        )
    console.print(table)
    counts = ", ".join(f"{n} {status}" for status, n in report["counts"].items())
    console.print(
        f"{len(report['jobs'])} jobs ({counts}); {report['images']} images; "
        f"total cost [bold]{report['cost_usd']} USD[/]"
    )
