"""The run's section of docs/benchmarks.md: the machine, the targets and whether each was met,
then each benchmark's tables and notes, and the profiles."""

from __future__ import annotations

import statistics
import subprocess
from datetime import UTC, datetime
from typing import Any

from bench.env import machine
from bench.plan import Plan, Results
from bench.report import mib, table


def targets(results: Results) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(target: str, measured: str, met: bool | None) -> None:
        verdict = "n/a" if met is None else ("met" if met else "NOT met")
        rows.append({"target": target, "measured": measured, "verdict": verdict})

    if results.ingest is not None:
        r = results.ingest
        row("webhook ingest >= 0.5x bare Flask", f"{r.ratio:.2f}x", r.ratio >= 0.5)
        p99 = r.receiver.load.percentile_ms(99)
        row("ingest p99 < 50 ms at 16 connections", f"{p99:.1f} ms", p99 < 50)
        row("zero webhooks lost", f"{r.lost} lost", r.lost == 0)
    if results.submit_deployed is not None and results.submit_deployed.ratio is not None:
        ratio = results.submit_deployed.ratio
        row("submission at 0 ms >= 0.5x no-op drain", f"{ratio:.2f}x", ratio >= 0.5)
    if results.submit_sweep:
        best = max(results.submit_sweep, key=lambda s: s.real.rate)
        row(
            f"submission at {best.latency_ms:g} ms >= 300 jobs/s",
            f"{best.real.rate:,.0f} jobs/s ({best.setup})",
            best.real.rate >= 300,
        )
    for campaign in results.campaigns:
        if campaign.jobs == 10_000 or campaign is results.campaigns[-1]:
            cpu = campaign.cpu_ms_per_job("worker") + campaign.cpu_ms_per_job("receiver")
            row(
                f"{campaign.jobs:,}-job campaign: worker + receiver CPU < 5 ms/job",
                f"{cpu:.2f} ms/job",
                cpu < 5,
            )
            break
    if len(results.campaigns) >= 2:
        # remixq's own processes; the simulator keeps every task in memory by design.
        first, last = results.campaigns[0], results.campaigns[-1]
        growth = {
            name: last.peak_rss[name] / first.peak_rss[name] - 1
            for name in ("receiver", "worker")
            if first.peak_rss.get(name) and last.peak_rss.get(name)
        }
        row(
            f"memory flat from {first.jobs:,} to {last.jobs:,} jobs (receiver and worker peak "
            "RSS < +25%)",
            ", ".join(f"{k} {v:+.0%}" for k, v in growth.items()),
            bool(growth) and max(growth.values()) < 0.25,
        )
    return rows


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (with uncommitted changes)" if dirty else "")


def document(
    plan: Plan, results: Results, command: str, loads: tuple[str, str], quick: bool
) -> str:
    out: list[str] = []
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.append(f"### Latest run: {now}{' (--quick)' if quick else ''}\n")
    facts = {
        "command": f"`{command}`",
        "revision": git_revision(),
        **machine(),
        "load average (1/5/15 min) before / after": f"{loads[0]} / {loads[1]}",
        "duration": f"{results.elapsed() / 60:.1f} min",
    }
    out.append(table([{"": k, " ": v} for k, v in facts.items()]))
    out.append(
        "\nThe load generator, the servers, the worker, the simulator and PostgreSQL all share "
        "these cores; every ratio below compares runs made one after the other in this run, "
        "under the same conditions.\n"
    )
    out.append("\n#### Targets\n")
    out.append(table(targets(results)))
    if results.ingest is not None:
        r = results.ingest
        out.append(
            f"\n#### 1. Webhook ingest ({r.corpus['webhooks']:,} webhooks per run, "
            f"{plan.connections} connections from {plan.client_processes} client processes)\n"
        )
        out.append("Corpus: " + ", ".join(f"{k} {v:,}" for k, v in r.corpus.items()) + ".\n\n")
        out.append(table([run.row() for run in r.runs]))
        naive = f"; naive handler {r.naive_ratio:.2f}x" if r.naive_ratio is not None else ""
        pairs = ", ".join(f"{x:.2f}" for x in r.pair_ratios)
        median = (
            f"the median of {len(r.pair_ratios)} pairs: {pairs}; " if len(r.pair_ratios) > 1 else ""
        )
        out.append(
            f"\nReceiver / bare Flask: **{r.ratio:.2f}x** ({median}bare runs spread "
            f"{r.bare_spread:.0%}{naive}). Stored: "
            + ", ".join(f"{k} {v:,}" for k, v in r.stored.items())
            + f"; distinct images sent {r.sent_images:,}; lost **{r.lost}**.\n"
        )
        if results.sweep:
            out.append("\nOther gunicorn settings (bare and receiver both run with them):\n\n")
            rows = [
                {
                    "settings": s.settings,
                    "webhooks": s.corpus["webhooks"],
                    "receiver/s": round(s.receiver.load.rate),
                    "bare/s": round(
                        statistics.mean(x.load.rate for x in s.runs if x.label.startswith("bare"))
                    ),
                    "ratio": round(s.ratio, 3),
                    "receiver p99 ms": round(s.receiver.load.percentile_ms(99), 1),
                    "lost": s.lost,
                }
                for s in [r, *results.sweep]
            ]
            rows[0]["settings"] = "deployed (gevent, a worker per CPU, group commit)"
            out.append(table(rows))
    if results.submit_deployed is not None:
        out.append(f"\n#### 2. Submission ({plan.submit_jobs:,} jobs, simulator at 0 ms)\n")
        rows = []
        for result in (results.submit_deployed, results.submit_unlimited):
            if result is None:
                continue
            for drain in (result.noop, result.real):
                if drain is not None:
                    rows.append({"worker set-up": result.setup, **drain.row()})
        out.append(table(rows))
        for result in (results.submit_deployed, results.submit_unlimited):
            if result is not None and result.ratio is not None:
                out.append(
                    f"\n{result.setup}: submission / no-op drain = **{result.ratio:.2f}x** "
                    "(jobs per second over no-op tasks per second).\n"
                )
    if results.submit_sweep:
        out.append(f"\n#### 2b. Submission at {plan.latency_ms:g} ms provider latency\n\n")
        out.append(
            table(
                [
                    {
                        "worker set-up": s.setup,
                        "jobs": s.real.items,
                        "provider requests": s.real.requests,
                        "jobs/s": round(s.real.rate),
                        "requests/s": round(s.real.requests / s.real.seconds, 1)
                        if s.real.seconds
                        else 0,
                        "worker CPU ms/job": round(s.real.worker_cpu_s / s.real.items * 1000, 3),
                        "failed": s.real.failed,
                    }
                    for s in results.submit_sweep
                ]
            )
        )
    if results.campaigns:
        out.append("\n#### 3-4. Whole campaigns, end to end\n\n")
        rows = []
        for c in results.campaigns:
            row: dict[str, Any] = {
                "jobs": c.jobs,
                "images": f"{c.images:,} / {c.expected_images:,}",
                "wall s": round(c.wall_s, 1),
                "jobs/s": round(c.rate),
                "submit s": round(c.submit_s, 1),
            }
            for name in c.cpu_s:
                row[f"{name} CPU ms/job"] = round(c.cpu_ms_per_job(name), 3)
            row["worker+receiver CPU ms/job"] = round(
                c.cpu_ms_per_job("worker") + c.cpu_ms_per_job("receiver"), 3
            )
            rows.append(row)
        out.append(table(rows))
        out.append("\nPeak memory (resident, MiB, summed over each process tree) and storage:\n\n")
        out.append(
            table(
                [
                    {
                        "jobs": c.jobs,
                        **{f"{k} MiB": mib(v) for k, v in c.peak_rss.items()},
                        **{f"{k} B/job": round(v / c.jobs) for k, v in c.table_bytes.items()},
                        "database B/job": round(c.bytes_per_job),
                        "statuses": c.statuses,
                        "webhooks (simulator)": {
                            k: v for k, v in c.webhooks.items() if k in ("succeeded", "duplicated")
                        },
                    }
                    for c in results.campaigns
                ]
            )
        )
    for note in results.notes:
        out.append(f"\n{note}\n")
    for profile in results.profiles:
        out.append(f"\n#### Profile: {profile.title}\n\n{profile.markdown(15)}")
    return "\n".join(out)
