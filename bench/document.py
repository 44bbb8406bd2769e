"""The run's section of docs/benchmarks.md: the machine, the targets and whether each was met,
then each benchmark's tables and notes, and the profiles."""

from __future__ import annotations

import statistics
import subprocess
from datetime import UTC, datetime
from typing import Any

from bench.campaign import CampaignResult
from bench.env import machine
from bench.plan import Plan, Results
from bench.report import mib, table
from remixq.states import FINAL

FINAL_NAMES = {status.value for status in FINAL}


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
    if results.sustained is not None:
        for generator in dict.fromkeys(r.generator for r in results.sustained.runs):
            run = results.sustained.run("receiver", generator)
            ratio = results.sustained.ratio(generator)
            if run is None:
                continue
            name = f"sustained ingest, {run.seconds:.0f} s ({generator})"
            row(f"{name}: p99 < 25 ms", f"{run.total.p99_ms:.1f} ms", run.total.p99_ms < 25)
            row(f"{name}: p99.9 < 100 ms", f"{run.total.p999_ms:.1f} ms", run.total.p999_ms < 100)
            if ratio is not None:
                row(f"{name}: >= 0.5x bare", f"{ratio:.2f}x", ratio >= 0.5)
            row(
                f"{name}: receiver memory after the first 10 s < +5%",
                f"{run.rss_growth:+.1%} (from the start {run.rss_growth_from_start:+.1%})",
                run.rss_growth < 0.05,
            )
        failed = sum(
            v
            for r in results.sustained.runs
            if r.label == "receiver"
            for k, v in r.statuses.items()
            if k not in ("200", "202", "2xx")
        )
        row("sustained ingest: nothing lost (every answer 2xx)", f"{failed} not", failed == 0)
    for embedded in (c for c in results.embedded if c.backend == "embedded"):
        beside = next(
            (c for c in results.embedded if c.jobs == embedded.jobs and c.backend != "embedded"),
            None,
        )
        name = f"embedded default, {embedded.jobs:,} jobs"
        if beside is not None:
            ratio = embedded.rate / beside.rate
            row(f"{name}: >= 0.7x PostgreSQL + Redis jobs/s", f"{ratio:.2f}x", ratio >= 0.7)
        final = sum(n for s, n in embedded.statuses.items() if s in FINAL_NAMES)
        stored = embedded.asset_statuses.get("stored", 0)
        row(
            f"{name}: every job final, every image stored",
            f"{final:,} final, {stored:,} of {embedded.expected_images:,} images stored",
            final == embedded.jobs and stored == embedded.expected_images,
        )
        if embedded.memory:
            growth = {p: embedded.memory_growth(p) for p in ("receiver", "worker", "assets worker")}
            row(
                f"{name}: memory flat (second half's peak < +5% over the first half's)",
                ", ".join(
                    f"{'background pool' if p == 'assets worker' else p} {g:+.1%}"
                    for p, g in growth.items()
                ),
                max(growth.values()) < 0.05,
            )
    for point in results.peer:
        if point.latency_ms == 0:
            cpu = (point.remixq_cpu_ms + point.remixq.cpu_ms_per_job("postgres")) / (
                point.script_cpu_ms or 1
            )
            row(
                "peer at 0 ms: remixq wall <= 1.5x the SDK script's",
                f"{point.wall_ratio:.2f}x",
                point.wall_ratio <= 1.5,
            )
            row(
                "peer at 0 ms: remixq CPU/job (PostgreSQL included) <= 1.5x",
                f"{cpu:.2f}x",
                cpu <= 1.5,
            )
        else:
            faster = 1 / point.wall_ratio if point.wall_ratio else 0.0
            row(
                f"peer at {point.latency_ms:g} ms: remixq >= 3x faster than the script",
                f"{faster:.1f}x",
                faster >= 3,
            )
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


def _sustained(results: Results, plan: Plan) -> list[str]:
    assert results.sustained is not None
    r = results.sustained
    out = [
        (
            f"\n#### 1b. Sustained ingest ({plan.sustained_seconds:g} s per run, "
            f"{plan.connections} connections, freshly started servers, nothing excluded)\n\n"
        ),
        table([run.row() for run in r.runs]),
    ]
    for generator in dict.fromkeys(run.generator for run in r.runs):
        ratio = r.ratio(generator)
        if ratio is not None:
            out.append(f"\n{generator}: receiver / bare Flask = **{ratio:.2f}x**.\n")
    out.append(
        f"\nStored: {r.stored.get('inbox rows', 0):,} inbox rows for {r.answered_ok:,} answers "
        "2xx to the receiver (wrk leaves the requests in flight at its end unanswered, but "
        "they are stored).\n"
    )
    for run in r.runs:
        note = " (consecutive 10-s wrk runs on the same server)" if run.generator == "wrk" else ""
        repeated = f"; {run.repeated:,} webhooks sent again" if run.repeated else ""
        out.append(f"\nPer 10-s window, {run.label}, {run.generator}{note}{repeated}:\n\n")
        rss = run.rss_by_window + [0] * (len(run.windows) - len(run.rss_by_window))
        out.append(
            table(
                [
                    {**w.row(), "server RSS MiB": mib(m) if m else "-"}
                    for w, m in zip(run.windows, rss, strict=True)
                ]
            )
        )
        ev = run.evidence
        if ev is not None:
            gc_full = ", ".join(f"{ms:.0f}" for ms in ev.gc_full_ms) or "none"
            blocked = len(ev.blocked_ms)
            waits = ", ".join(f"{k} x{v}" for k, v in ev.waits.most_common(5)) or "-"
            out.append(
                f"\nProbes: full collections in the workers {ev.gc_full} (ms: {gc_full}); "
                f"gevent hub blocked > 20 ms {blocked} times; PostgreSQL samples (every 20 ms, "
                f"active backends): {waits}.\n"
            )
            if ev.rows:
                worst = sorted(ev.rows, key=lambda x: -x["max ms"])[:8]
                out.append("\nThe stalls (requests >= 100 ms, by overlap), worst first:\n\n")
                out.append(table(sorted(worst, key=lambda x: x["at s"])))
        if run.log_lines:
            out.append("\nPostgreSQL's log meanwhile (the cluster's):\n\n")
            out.extend(f"    {line}\n" for line in run.log_lines[-6:])
    return out


def _embedded(results: Results) -> list[str]:
    out = [
        "\n#### 4b. The embedded default (SQLite, kombu's SQLAlchemy transport)\n\n",
        (
            "Both as deployed by default: one worker serving every queue, beat sweeping (inside"
            " the embedded default's worker), every image copied to the data folder. Jobs/s runs"
            " to the last job's end; the last copy is timed from `remixq submit`'s start.\n\n"
        ),
    ]
    rows = []
    for c in results.embedded:
        processes = ("producer (remixq submit)", "worker", "assets worker", "receiver", "beat")
        rows.append(
            {
                "backend": "embedded (SQLite)" if c.backend == "embedded" else "PostgreSQL + Redis",
                "jobs": c.jobs,
                "wall s": round(c.wall_s, 1),
                "jobs/s": round(c.rate),
                "last copy s": round(c.assets_s or 0, 1),
                "submit s": round(c.submit_s, 1),
                "CPU ms/job (submit+worker+receiver+beat)": round(
                    sum(c.cpu_ms_per_job(n) for n in processes), 3
                ),
                "postgres CPU ms/job": round(c.cpu_ms_per_job("postgres"), 3),
                "receiver MiB": mib(c.peak_rss.get("receiver", 0)),
                "worker MiB (its three pools)": mib(
                    c.peak_rss.get("worker", 0) + c.peak_rss.get("assets worker", 0)
                ),
                "storage B/job": round(c.bytes_per_job),
                "statuses": c.statuses,
                "images": f"{c.images:,} / {c.expected_images:,}",
                "copies": c.asset_statuses,
            }
        )
    out.append(table(rows))
    out.append(
        "\nResident memory through each run (MiB, sampled every 2 s from `remixq submit`'s start"
        " to the last copy; the worker's background pool apart; growth: the peak of the second"
        " half of the run over the peak of the first, where a plateau reached early is 0 and a"
        " leak grows with the work done):\n\n"
    )
    out.append(table(_memory_rows(results.embedded)))
    return out


MEMORY_POINTS = (0.1, 0.25, 0.5, 0.75, 1.0)


def _memory_rows(campaigns: list[CampaignResult]) -> list[dict[str, Any]]:
    rows = []
    for c in campaigns:
        for name in ("receiver", "worker", "assets worker", "beat"):
            if not c.memory or name not in c.memory[-1][1]:
                continue
            rows.append(
                {
                    "backend": "embedded" if c.backend == "embedded" else "PostgreSQL + Redis",
                    "jobs": c.jobs,
                    "process": "background pool" if name == "assets worker" else name,
                    **{f"at {point:.0%}": mib(c.memory_at(name, point)) for point in MEMORY_POINTS},
                    "peak": mib(max(m.get(name, 0) for _, m in c.memory)),
                    "growth": f"{c.memory_growth(name):+.1%}",
                }
            )
    return rows


def _assets(results: Results) -> list[str]:
    out = [
        (
            "\n#### 4c. Campaigns with their images copied (PostgreSQL + Redis)\n\n"
            "The whole campaign as in 3-4, and every image fetched from the simulator, verified "
            "and stored in a folder by the worker's background pool (a child process of 16 "
            "threads, whose CPU is counted apart from the rest of the worker's), "
            "`remixq beat` sweeping every 2 s. Times run from the start of `remixq submit`. "
            "A paced row runs its campaign below what the two cores can do (through the "
            "provider rate limit), so that its copy delay is not a queue behind a saturated "
            "machine.\n\n"
        )
    ]
    rows = []
    for c in results.assets:
        rows.append(
            {
                "jobs": c.jobs,
                "paced at jobs/s": f"{c.pace:g}" if c.pace else "-",
                "images": f"{c.images:,}",
                "last job s": round(c.wall_s, 1),
                "last copy s": round(c.assets_s or 0, 1),
                "last copy after last job s": round(c.assets_after_jobs_s or 0, 1),
                "copies": c.asset_statuses,
                "image to copy s (p50 / p99)": (
                    f"{c.copy_delay_s[0]:.1f} / {c.copy_delay_s[1]:.1f}" if c.copy_delay_s else "-"
                ),
                "background pool CPU ms/image": round(c.cpu_ms_per_image("assets worker"), 3),
                "simulator CPU ms/image": round(c.cpu_ms_per_image("simulator"), 3),
                "postgres CPU ms/image": round(c.cpu_ms_per_image("postgres"), 3),
                "worker+receiver CPU ms/job": round(
                    c.cpu_ms_per_job("worker") + c.cpu_ms_per_job("receiver"), 3
                ),
                "stored KiB/image": round(c.stored_bytes / max(1, c.images) / 1024, 1),
                "background pool MiB": mib(c.peak_rss.get("assets worker", 0)),
            }
        )
    out.append(table(rows))
    return out


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


def _duration(results: Results) -> str:
    """The run's wall time, and each section's."""
    sections = ", ".join(f"{k} {v / 60:.1f}" for k, v in results.section_seconds.items())
    return f"{results.elapsed() / 60:.1f} min" + (f" ({sections} min)" if sections else "")


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
        "duration": _duration(results),
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
    if results.sustained is not None:
        out.extend(_sustained(results, plan))
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
    if results.embedded:
        out.extend(_embedded(results))
    if results.assets:
        out.extend(_assets(results))
    if results.peer:
        out.append(
            f"\n#### 5. Peer baseline ({plan.peer_jobs:,} jobs, all in flight at once)\n\n"
            "The SDK script: bench/peer_client.py (runware-sdk, REST, sync delivery, its default "
            "aiohttp session: at most 100 connections). remixq: a whole campaign (`remixq "
            "submit`, worker, receiver, PostgreSQL + Redis); its client CPU is submit + worker "
            "+ receiver, PostgreSQL apart.\n\n"
        )
        out.append(table([row for point in results.peer for row in point.rows()]))
    for note in results.notes:
        out.append(f"\n{note}\n")
    for profile in results.profiles:
        out.append(f"\n#### Profile: {profile.title}\n\n{profile.markdown(15)}")
    return "\n".join(out)
