"""`python -m bench`: every benchmark of remixq, its tables, and docs/benchmarks.md.

    python -m bench                 # the full run (about 15 minutes on 2 cores)
    python -m bench --quick         # a small run (about 2 minutes)
    python -m bench --only ingest --webhooks 50000 --no-write

Sections: `ingest` (benchmark 1), `submit` (2), `profiles` (the two hot paths), `campaign`
(3 and 4: whole campaigns at growing sizes, as far as the time budget allows). Everything runs
against 127.0.0.1 only, on the database `remixq_bench` and Redis database 13
(REMIXQ_BENCH_DATABASE_URL / REMIXQ_BENCH_REDIS_URL override them).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import env as bench_env_module
from bench.campaign import CampaignResult, run_campaign
from bench.env import BenchEnv, bench_env, load_average, machine
from bench.ingest import IngestResult, profile_ingest, run_ingest
from bench.report import mib, table, write_block
from bench.submit import (
    SubmitResult,
    WorkerSetup,
    expected_rate,
    profile_submission,
    run_submission,
)
from remixq.config import load_settings

SECTIONS = ("ingest", "submit", "profiles", "campaign")
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


@dataclass
class Plan:
    webhooks: int = 20_000
    ingest_pairs: int = 5  # alternating bare/receiver pairs; the ratio is their median
    connections: int = 16
    client_processes: int = 2
    server_sweep: tuple[str, ...] = (
        "--workers 3",
        "--workers 4",
        "--set worker_class=gthread --set threads=8",
    )
    submit_jobs: int = 5_000
    latency_ms: float = 300.0
    batched_concurrency: tuple[int, ...] = (4, 16, 32, 64)
    single_concurrency: tuple[int, ...] = (8, 32, 64)
    seconds_per_point: float = 6.0
    campaign_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    profile_webhooks: int = 3_000
    profile_jobs: int = 2_000
    budget_minutes: float = 15.0
    sections: tuple[str, ...] = SECTIONS


QUICK = Plan(
    webhooks=3_000,
    ingest_pairs=1,
    server_sweep=(),
    submit_jobs=1_000,
    batched_concurrency=(8, 32),
    single_concurrency=(32,),
    seconds_per_point=3.0,
    campaign_sizes=(500, 2_000),
    profile_webhooks=800,
    profile_jobs=500,
    budget_minutes=2.5,  # the projection from 500 jobs overestimates (start-up dominates)
)


@dataclass
class Results:
    started: float = field(default_factory=time.monotonic)
    ingest: IngestResult | None = None
    sweep: list[IngestResult] = field(default_factory=list)
    submit_deployed: SubmitResult | None = None
    submit_unlimited: SubmitResult | None = None
    submit_sweep: list[SubmitResult] = field(default_factory=list)
    profiles: list[Any] = field(default_factory=list)
    campaigns: list[CampaignResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _say(text: str) -> None:
    print(text, flush=True)


# --- sections ------------------------------------------------------------------------------


def _ingest(env: BenchEnv, plan: Plan, results: Results) -> None:
    _say(f"\n## 1. webhook ingest: {plan.webhooks:,} webhooks, {plan.connections} connections")
    results.ingest = run_ingest(
        env,
        webhooks=plan.webhooks,
        connections=plan.connections,
        client_processes=plan.client_processes,
        pairs=plan.ingest_pairs,
    )
    _say(table([r.row() for r in results.ingest.runs]))
    pairs = ", ".join(f"{x:.3f}" for x in results.ingest.pair_ratios)
    _say(f"ratio {results.ingest.ratio:.3f} (pairs {pairs}), lost {results.ingest.lost}")
    for args in plan.server_sweep:
        _say(f"gunicorn settings {args!r}:")
        swept = run_ingest(
            env,
            webhooks=max(3_000, plan.webhooks // 3),
            connections=plan.connections,
            client_processes=plan.client_processes,
            server_args=args.split(),
            naive=False,
        )
        results.sweep.append(swept)
        _say(f"  ratio {swept.ratio:.3f}, receiver {swept.receiver.load.rate:,.0f}/s")


def _submit(env: BenchEnv, plan: Plan, results: Results) -> None:
    _say(f"\n## 2. submission: {plan.submit_jobs:,} jobs at zero provider latency")
    deployed = WorkerSetup()
    results.submit_deployed = run_submission(env, jobs_count=plan.submit_jobs, setup=deployed)
    unlimited = WorkerSetup(rate_limit=100_000)
    results.submit_unlimited = run_submission(env, jobs_count=plan.submit_jobs, setup=unlimited)
    for result in (results.submit_deployed, results.submit_unlimited):
        _say(f"{result.setup}: ratio {result.ratio:.3f}")
        _say(table([d.row() for d in (result.noop, result.real) if d is not None]))
    settings = load_settings()
    points = [WorkerSetup("threads", c) for c in plan.batched_concurrency]
    points += [WorkerSetup("threads", c, batch=1) for c in plan.single_concurrency]
    points.append(WorkerSetup("prefork", 2))
    _say(f"\n## 2b. submission at {plan.latency_ms:g} ms provider latency")
    for setup in points:
        rate = expected_rate(setup, settings, plan.latency_ms)
        count = int(min(5_000, max(200, rate * plan.seconds_per_point)))
        result = run_submission(
            env,
            jobs_count=count,
            setup=setup,
            latency_ms=plan.latency_ms,
            with_noop=False,
        )
        results.submit_sweep.append(result)
        _say(f"  {result.setup}: {result.real.rate:,.0f} jobs/s ({count} jobs)")


def _profiles(env: BenchEnv, plan: Plan, results: Results) -> None:
    _say("\n## profiles")
    results.profiles.append(profile_ingest(env, webhooks=plan.profile_webhooks))
    results.profiles.append(profile_submission(env, jobs_count=plan.profile_jobs))
    for profile in results.profiles:
        _say(f"### {profile.title}\n{profile.markdown(12)}")


def _campaigns(env: BenchEnv, plan: Plan, results: Results) -> None:
    _say("\n## 3-4. whole campaigns")
    budget = plan.budget_minutes * 60
    previous: tuple[int, float] | None = None
    for size in plan.campaign_sizes:
        if previous is not None:
            last_size, last_seconds = previous
            projected = last_seconds * size / last_size * 1.15
            remaining = budget - results.elapsed()
            if projected > remaining:
                note = (
                    f"The {size:,}-job campaign was skipped: projected {projected / 60:.1f} min "
                    f"(from the {last_size:,}-job run) against {max(0, remaining) / 60:.1f} min "
                    "left of the time budget (--budget-minutes)."
                )
                results.notes.append(note)
                _say(note)
                break
        t0 = time.monotonic()
        result = run_campaign(env, jobs_count=size)
        previous = (size, time.monotonic() - t0)
        results.campaigns.append(result)
        cpu = result.cpu_ms_per_job("worker") + result.cpu_ms_per_job("receiver")
        _say(
            f"  {size:,} jobs: {result.wall_s:.1f} s, {result.rate:,.0f} jobs/s, "
            f"worker+receiver {cpu:.2f} ms CPU/job"
        )


# --- the document ---------------------------------------------------------------------------


def _targets(results: Results) -> list[dict[str, Any]]:
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


def _git_revision() -> str:
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


def _document(
    plan: Plan, results: Results, command: str, loads: tuple[str, str], quick: bool
) -> str:
    out: list[str] = []
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out.append(f"### Latest run: {now}{' (--quick)' if quick else ''}\n")
    facts = {
        "command": f"`{command}`",
        "revision": _git_revision(),
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
    out.append(table(_targets(results)))
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


# --- entry point ----------------------------------------------------------------------------


def _csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def main(argv: list[str] | None = None) -> int:
    # The bench builds one Celery app per rig in this process; their tasks share names.
    warnings.filterwarnings("ignore", message="Task name .* is already registered")
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (about 2 minutes)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections, comma-separated")
    parser.add_argument("--webhooks", type=int, help="webhooks posted in benchmark 1")
    parser.add_argument("--connections", type=int, help="connections of the load generator")
    parser.add_argument("--client-processes", type=int, help="load generator processes")
    parser.add_argument("--submit-jobs", type=int, help="jobs of benchmark 2 at 0 ms")
    parser.add_argument("--latency-ms", type=float, help="provider latency of benchmark 2b")
    parser.add_argument("--concurrency", type=_csv_ints, help="thread counts of benchmark 2b")
    parser.add_argument("--campaign-sizes", type=_csv_ints, help="e.g. 1000,10000,100000")
    parser.add_argument("--budget-minutes", type=float, help="skip campaigns that would overrun")
    parser.add_argument("--no-server-sweep", action="store_true", help="deployed settings only")
    parser.add_argument("--out", type=Path, default=DOC, help="the document to update")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)

    plan = replace(QUICK) if args.quick else Plan()
    overrides = {
        "webhooks": args.webhooks,
        "connections": args.connections,
        "client_processes": args.client_processes,
        "submit_jobs": args.submit_jobs,
        "latency_ms": args.latency_ms,
        "batched_concurrency": args.concurrency,
        "campaign_sizes": args.campaign_sizes,
        "budget_minutes": args.budget_minutes,
    }
    plan = replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    if args.no_server_sweep:
        plan = replace(plan, server_sweep=())
    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")

    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    load_before = load_average()
    _say(
        f"remixq bench: database {bench_env_module.PG_URL.rsplit('/', 1)[-1]}, "
        f"broker {bench_env_module.REDIS_URL}"
    )
    results = Results()
    runners = {
        "ingest": _ingest,
        "submit": _submit,
        "profiles": _profiles,
        "campaign": _campaigns,
    }
    with bench_env(keep=args.keep) as env:
        if args.keep:
            _say(f"scratch directory: {env.root}")
        for section in SECTIONS:
            if section in sections:
                runners[section](env, plan, results)
    document = _document(plan, results, command.strip(), (load_before, load_average()), args.quick)
    _say("\n" + "\n".join(line for line in document.splitlines()))
    if not args.no_write:
        write_block(args.out, document)
        _say(f"\nwritten to {args.out}")
    return 0
