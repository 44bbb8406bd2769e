"""`python -m bench`: every benchmark of remixq, its tables, and docs/benchmarks.md.

    python -m bench                 # the full run (about 15 minutes on 2 cores)
    python -m bench --quick         # a small run (about 3 minutes)
    python -m bench --large         # adds the 100,000-job campaigns on both backends
    python -m bench --only ingest --webhooks 50000 --no-write

Sections: `ingest` (benchmark 1), `sustained` (1b: a minute of ingest per server and load
generator, per 10-s window), `submit` (2), `profiles` (the two hot paths), `campaign` (3 and 4:
whole campaigns at growing sizes, as far as the time budget allows), `embedded` (4b: the
embedded default beside PostgreSQL + Redis), `peer` (5: the SDK script). Everything runs
against 127.0.0.1 only, on the database `remixq_bench` and Redis database 13
(REMIXQ_BENCH_DATABASE_URL / REMIXQ_BENCH_REDIS_URL override them).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench import env as bench_env_module
from bench.campaign import CampaignResult, run_campaign
from bench.document import document as render
from bench.env import BenchEnv, bench_env, load_average
from bench.ingest import profile_ingest, run_ingest
from bench.peer import run_peer
from bench.plan import LARGE_SIZES, QUICK, SECTIONS, SERVER_SWEEP, Plan, Results
from bench.report import table, write_block
from bench.submit import (
    WorkerSetup,
    expected_rate,
    profile_submission,
    run_submission,
)
from bench.sustained import run_sustained
from remixq.config import load_settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SUSTAINED_MARGIN = 1.6  # the sustained corpus over the fastest receiver run of benchmark 1


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


def _sustained(env: BenchEnv, plan: Plan, results: Results) -> None:
    _say(
        f"\n## 1b. sustained ingest: {plan.sustained_seconds:g} s per run, "
        f"{plan.connections} connections, {', '.join(plan.sustained_generators)}"
    )
    results.sustained = run_sustained(
        env,
        seconds=plan.sustained_seconds,
        connections=plan.connections,
        client_processes=plan.client_processes,
        generators=plan.sustained_generators,
        expected_rate=_sustained_rate(plan, results),
    )
    _say(table([r.row() for r in results.sustained.runs]))
    for note in results.sustained.notes:
        _say(note)


def _sustained_rate(plan: Plan, results: Results) -> float:
    """Webhooks/s the receiver's corpus is sized for: 1.6 times the fastest receiver run of
    benchmark 1 when it ran (a minute's worth of jobs takes the corpus most of a minute to
    build), the plan's figure otherwise. A receiver that outran it would be sent webhooks again,
    and the run says how many."""
    if results.ingest is None:
        return plan.sustained_rate
    fastest = max(r.load.rate for r in results.ingest.runs if r.label.startswith("receiver"))
    return max(1_000.0, min(plan.sustained_rate, SUSTAINED_MARGIN * fastest))


def _submit(env: BenchEnv, plan: Plan, results: Results) -> None:
    _say(f"\n## 2. submission: {plan.submit_jobs:,} jobs at zero provider latency")
    deployed = WorkerSetup()
    results.submit_deployed = run_submission(env, jobs_count=plan.submit_jobs, setup=deployed)
    unlimited = WorkerSetup(rate_limit=100_000)
    results.submit_unlimited = run_submission(
        env, jobs_count=plan.submit_jobs, setup=unlimited, with_noop=False
    )
    # The no-op task takes no permit: with the limit lifted, its drain is the same baseline.
    results.submit_unlimited.noop = results.submit_deployed.noop
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


def _deployed(env: BenchEnv, results: Results, size: int) -> CampaignResult:
    """A campaign of `size` jobs on PostgreSQL + Redis as deployed by default: one worker with
    its background pool, `remixq beat` sweeping, every image copied. Sections 3-4, 4b and 4c
    share it: each size runs once per run."""
    if size not in results.deployed:
        results.deployed[size] = run_campaign(env, jobs_count=size, assets=True)
    return results.deployed[size]


def _campaigns(env: BenchEnv, plan: Plan, results: Results) -> None:
    _say("\n## 3-4. whole campaigns (as deployed: beat sweeping, every image copied)")
    budget = plan.budget_minutes * 60
    started = time.monotonic()
    previous: tuple[int, float] | None = None
    for size in plan.campaign_sizes:
        if previous is not None:
            last_size, last_seconds = previous
            projected = last_seconds * size / last_size * 1.15
            remaining = budget - (time.monotonic() - started)
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
        result = _deployed(env, results, size)
        previous = (size, time.monotonic() - t0)
        results.campaigns.append(result)
        cpu = result.cpu_ms_per_job("worker") + result.cpu_ms_per_job("receiver")
        _say(
            f"  {size:,} jobs: {result.wall_s:.1f} s, {result.rate:,.0f} jobs/s, "
            f"worker+receiver {cpu:.2f} ms CPU/job"
        )


def _say_campaign(result: CampaignResult) -> None:
    cpu = result.cpu_ms_per_job("worker") + result.cpu_ms_per_job("receiver")
    _say(
        f"  {result.backend} {result.jobs:,} jobs: {result.wall_s:.1f} s, "
        f"{result.rate:,.0f} jobs/s, worker+receiver {cpu:.2f} ms CPU/job"
    )


def _embedded(env: BenchEnv, plan: Plan, results: Results) -> None:
    """Both set-ups as deployed by default: one worker serving every queue, beat sweeping (the
    embedded default's worker runs it), every image copied. The worker's background pool is
    measured apart (its memory series too) and added back in the table."""
    _say("\n## 4b. the embedded default beside PostgreSQL + Redis (images copied on both)")
    for size in plan.embedded_sizes:
        for backend in plan.embedded_backends:
            if backend == "postgres":
                result = _deployed(env, results, size)
            else:
                result = run_campaign(env, jobs_count=size, backend=backend, assets=True)
            results.embedded.append(result)
            _say_campaign(result)
            _say(f"    last copy at {result.assets_s or 0:.1f} s")


def _assets(env: BenchEnv, plan: Plan, results: Results) -> None:
    _say("\n## 4c. campaigns with their images copied (PostgreSQL + Redis)")
    runs = [(size, None) for size in plan.assets_sizes] + list(plan.assets_paced)
    for size, pace in runs:
        if pace is None:
            result = _deployed(env, results, size)
        else:
            result = run_campaign(env, jobs_count=size, assets=True, pace=pace)
        results.assets.append(result)
        _say(
            f"  {size:,} jobs, {result.images:,} images: last copy at {result.assets_s or 0:.1f} s"
            f" ({result.assets_after_jobs_s or 0:.1f} s after the last job), background pool"
            f" {result.cpu_ms_per_image('assets worker'):.2f} ms CPU/image,"
            f" copies {result.asset_statuses}, image to copy (p50, p99) {result.copy_delay_s} s"
        )


def _peer(env: BenchEnv, plan: Plan, results: Results) -> None:
    _say(f"\n## 5. peer baseline: {plan.peer_jobs:,} jobs, the SDK script and remixq")
    try:
        import runware  # noqa: F401 (the `bench` extra)
    except ImportError:
        note = "The peer baseline was skipped: runware-sdk is not installed (the `bench` extra)."
        results.notes.append(note)
        _say(note)
        return
    results.peer = run_peer(env, jobs=plan.peer_jobs, latencies_ms=plan.peer_latencies_ms)
    for point in results.peer:
        _say(table(point.rows()))


# --- entry point ----------------------------------------------------------------------------


def _csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _csv_backends(text: str) -> tuple[str, ...]:
    backends = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = sorted(set(backends) - {"embedded", "postgres"})
    if unknown or not backends:
        raise argparse.ArgumentTypeError(
            f"{text!r}: choose embedded, postgres or both (comma-separated)"
        )
    return backends


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (about 3 minutes)")
    parser.add_argument(
        "--large", action="store_true", help="add the 100,000-job campaigns on both backends"
    )
    parser.add_argument("--sustained-seconds", type=float, help="length of each run of 1b")
    parser.add_argument("--peer-jobs", type=int, help="jobs of the peer baseline")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections, comma-separated")
    parser.add_argument("--webhooks", type=int, help="webhooks posted in benchmark 1")
    parser.add_argument("--connections", type=int, help="connections of the load generator")
    parser.add_argument("--client-processes", type=int, help="load generator processes")
    parser.add_argument("--submit-jobs", type=int, help="jobs of benchmark 2 at 0 ms")
    parser.add_argument("--latency-ms", type=float, help="provider latency of benchmark 2b")
    parser.add_argument("--concurrency", type=_csv_ints, help="thread counts of benchmark 2b")
    parser.add_argument("--campaign-sizes", type=_csv_ints, help="e.g. 1000,10000,100000")
    parser.add_argument("--assets-sizes", type=_csv_ints, help="campaigns of section assets")
    parser.add_argument(
        "--embedded-sizes", type=_csv_ints, help="campaigns of section embedded, e.g. 100000"
    )
    parser.add_argument(
        "--embedded-backends",
        type=_csv_backends,
        help="section embedded's set-ups: embedded,postgres (both, the default) or one of them",
    )
    parser.add_argument("--budget-minutes", type=float, help="skip campaigns that would overrun")
    parser.add_argument(
        "--server-sweep", action="store_true", help="benchmark 1 under other gunicorn settings too"
    )
    parser.add_argument(
        "--no-server-sweep", action="store_true", help="deployed settings only (the default)"
    )
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
        "assets_sizes": args.assets_sizes,
        "embedded_sizes": args.embedded_sizes,
        "embedded_backends": args.embedded_backends,
        "budget_minutes": args.budget_minutes,
        "sustained_seconds": args.sustained_seconds,
        "peer_jobs": args.peer_jobs,
    }
    plan = replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    if args.large:
        plan = replace(
            plan,
            campaign_sizes=tuple(sorted({*plan.campaign_sizes, *LARGE_SIZES})),
            embedded_sizes=tuple(sorted({*plan.embedded_sizes, *LARGE_SIZES})),
            budget_minutes=max(plan.budget_minutes, 60.0),
        )
    if args.server_sweep and not args.no_server_sweep:
        plan = replace(plan, server_sweep=SERVER_SWEEP)
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
        "sustained": _sustained,
        "submit": _submit,
        "profiles": _profiles,
        "campaign": _campaigns,
        "embedded": _embedded,
        "assets": _assets,
        "peer": _peer,
    }
    failed: list[str] = []
    with bench_env(keep=args.keep) as env:
        if args.keep:
            _say(f"scratch directory: {env.root}")
        for section in SECTIONS:
            if section in sections:
                t0 = time.monotonic()
                try:
                    runners[section](env, plan, results)
                except (TimeoutError, RuntimeError, OSError) as exc:
                    # One section's failure (a wait past its deadline, a process that died)
                    # loses that section, not the figures the others took.
                    failed.append(section)
                    note = f"Section {section} failed after {time.monotonic() - t0:.0f} s: {exc}"
                    results.notes.append(note)
                    _say(note)
                results.section_seconds[section] = time.monotonic() - t0
    document = render(plan, results, command.strip(), (load_before, load_average()), args.quick)
    _say("\n" + "\n".join(line for line in document.splitlines()))
    if not args.no_write:
        write_block(args.out, document)
        _say(f"\nwritten to {args.out}")
    return 1 if failed else 0
