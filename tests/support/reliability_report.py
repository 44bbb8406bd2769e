"""Run the chaos suite and write its figures to docs/reliability.md.

    python -m tests.support.reliability_report          # run `pytest -m chaos`, write the page
    python -m tests.support.reliability_report --from F # only write the page from figures in F

Each scenario appends one JSON line of figures to $REMIXQ_RELIABILITY_REPORT (see
`tests.support.chaos.record`); this module runs the suite with that variable set, then turns
the lines into a table and one section per scenario. The page is only rewritten when every
scenario passed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from remixq import reports
from remixq.config import Settings
from tests.support.chaos import DEFAULT_KNOBS, FAST_SETTINGS, RECOVERY_SETTINGS, REPORT_ENV

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "docs" / "reliability.md"
RERUN = "make services && .venv/bin/python -m tests.support.reliability_report"

# The page's order; a scenario not listed here comes last.
ORDER = (
    "throttled",
    "throttled-sqlite",
    "timeouts",
    "dropped",
    "dropped-sqlite",
    "duplicated",
    "before-ack",
    "out-of-credit",
    "receiver-down",
    "worker-sigkill",
    "worker-sigkill-sqlite",
    "redis-restart",
    "rabbitmq-restart",
    "db-outage-worker",
    "beat-killed",
    "worker-sigterm",
    "receiver-sigterm",
    "db-outage",
    "burst",
)

# Injected faults and scenario notes, as the table's "injected" column words them.
LABELS = {
    "http_429": "{} x 429",
    "http_503": "{} x 503",
    "submit_timeout": "{} submissions timed out",
    "submit_timeout_after_accept": "{} timed out after acceptance",
    "generation_failure": "{} tasks failed by the provider",
    "webhook_before_ack": "{} tasks' webhooks before the ack",
    "webhooks_dropped": "{} webhooks dropped",
    "webhooks_duplicated": "{} webhooks sent twice",
    "webhook_attempts_failed": "{} webhook attempts refused",
    "receiver_down_s": "receiver down {} s",
    "claims_orphaned": "{} claims orphaned by the kill",
    "jobs_queued_at_restart": "{} jobs queued when Redis went down",
    "queued_after_shutdown": "{} jobs handed back at shutdown",
    "probe_status": "probe answered {}",
    "webhooks_pending_at_fault": "{} results not yet delivered when it struck",
    "insufficient_credits": "{} submissions answered 402",
    "completed_at_pause": "{} jobs completed before the pause",
    "pending_at_pause": "{} held pending",
    "paused_for_s": "paused {} s before the resume",
    "database_down_s": "database cut off {} s",
    "unsubmitted_at_cut": "{} jobs not yet submitted when it was cut",
    "jobs_queued_when_lost": "{} jobs' messages lost while beat was down",
    "beat_down_s": "beat down {} s",
}
NOTES = (
    "webhooks_pending_at_fault",
    "receiver_down_s",
    "claims_orphaned",
    "jobs_queued_at_restart",
    "queued_after_shutdown",
    "probe_status",
    "completed_at_pause",
    "pending_at_pause",
    "paused_for_s",
    "database_down_s",
    "unsubmitted_at_cut",
    "jobs_queued_when_lost",
    "beat_down_s",
)
BACKEND_NAMES = {"postgresql": "PostgreSQL + Redis", "sqlite": "SQLite (embedded)"}


# What building and running the suite taught us; kept by hand, beside the generated figures.
FINDINGS = (
    "## What the suite found",
    "",
    "- **Nothing scheduled the relay and the reconciler.** There was no `remixq beat`, and the",
    "  worker did not embed beat on the embedded default, so a dropped webhook or a lost message",
    "  waited forever (the `dropped`, `worker-sigkill` and `redis-restart` scenarios never",
    "  finished). `remixq beat` now exists, the embedded default's worker runs beat itself, and",
    "  `tests/e2e/test_beat.py` checks both.",
    "- **A Celery worker exited when its broker went away.** With Celery 5.7.0 and kombu 5.7.0 the",
    "  worker sometimes stopped with `Unrecoverable error: AttributeError(... 'hostname')` (about",
    "  one `redis-restart` run in two): on a connection loss Celery's consumer first collects the",
    "  broken connection, which detaches the transport from it, and a later call on the old Redis",
    "  channel (closing it again to give back its unacknowledged messages, or acknowledging a task",
    "  that finished meanwhile) built a connection pool from the detached `transport.client`: an",
    "  AttributeError, which Celery does not take for a connection error. The worker ran under a",
    "  supervisor that restarted it. `worker/broker.py`'s `RedisChannel` now fails such calls as a",
    "  lost connection, which Celery handles; the scenario, on Redis and on RabbitMQ, runs with no",
    "  supervisor and checks that the same worker and beat processes finish the campaign.",
    "- **Recovery took ten minutes with the old defaults.** Work lost with a broker or a worker",
    "  came back after `REMIXQ_RELAY_QUEUED_STALE` (600 s) or `REMIXQ_CLAIM_LEASE` (120 s), lost",
    "  webhooks after `REMIXQ_RECONCILE_AFTER` (120 s). The defaults are now 45 s each: the lease",
    "  still exceeds the longest provider call (connect + read timeouts, 33 s), the reconciler",
    "  still waits out a generation and the provider's webhook retries (250 ms doubling to 8 s),",
    "  and with the relay's 10 s and the reconciler's 15 s rounds every scenario that times a",
    "  recovery with them (*defaults* in the table) recovers in about a minute.",
    "- **A failed task that getResponse reports with a transient code never ended.** The",
    "  simulator fails tasks with `timeoutProvider`, the documented getResponse example of a",
    "  failed task (`status: error`, \"automatically terminated\"). The reconciler read the code",
    "  as a transient poll error and asked again, ever less often, so a job whose error webhook",
    "  was lost stayed `submitted` until `REMIXQ_JOB_MAX_AGE`. Now a task error the provider",
    "  still reports at the job's `REMIXQ_RECONCILE_FINAL_CHECK` (3) is the task's outcome;",
    "  `test_failed_task_with_a_transient_code_and_no_webhook` checks it.",
    "- **A database outage under the worker costs a relay round, nothing more.** A claim or a",
    "  record cut off by the outage raises, its message is acknowledged and its jobs stay",
    "  `queued` (or `submitting`, completed by their webhooks) until the relay publishes them",
    "  again after `REMIXQ_RELAY_QUEUED_STALE` / `REMIXQ_CLAIM_LEASE`.",
)


def run_suite(report: Path) -> int:
    env = {**os.environ, REPORT_ENV: str(report)}
    command = [sys.executable, "-m", "pytest", "-m", "chaos", "tests/chaos", "-q"]
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def load(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rank = {name: index for index, name in enumerate(ORDER)}
    return sorted(rows, key=lambda row: rank.get(row["scenario"], len(ORDER)))


def injected(row: dict[str, Any]) -> str:
    if "injected" in row:
        return str(row["injected"])
    parts = [LABELS[kind].format(n) for kind, n in row.get("faults", {}).items() if kind in LABELS]
    for key in ("webhooks_dropped", "webhooks_duplicated", "webhook_attempts_failed", *NOTES):
        if row.get(key):
            parts.append(LABELS[key].format(row[key]))
    for name, n in row.get("restarted_by_supervisor", {}).items():
        parts.append(f"{name} exited and was restarted {n}x")
    return "; ".join(parts) or "—"


def recovery(row: dict[str, Any]) -> str:
    if row.get("recovery_s") is None:
        return "—"
    basis = {"fault over": "after the fault", "acceptance": "worst lost result"}
    return f"{row['recovery_s']} s ({basis.get(row.get('recovery_from', ''), 'after the fault')})"


def cell(value: Any, suffix: str = "") -> str:
    return "—" if value is None else f"{value}{suffix}"


def money(value: str | None) -> str:
    return reports.money(Decimal(value)) if value else "—"


def table(rows: Iterable[dict[str, Any]]) -> list[str]:
    lines = [
        (
            "| scenario | backend | settings | fault | injected / observed | jobs (failed) "
            "| images stored / expected | cost stored = provider (USD) | webhook deliveries "
            "| duplicates ignored | recovered by getResponse | submissions per task (max / mean) "
            "| time to reconcile | time to recover | campaign |"
        ),
        "|" + " --- |" * 15,
    ]
    for row in rows:
        exact = _same(row["cost_usd"], row["provider_cost_usd"])
        cost_ok = "=" if exact else "≠"
        submissions = (
            f"{row['submissions_per_task_max']} / {row['submissions_per_task_mean']}"
            if "submissions_per_task_max" in row
            else "—"
        )
        lines.append(
            f"| [{row['scenario']}](#{row['scenario']}) "
            f"| {BACKEND_NAMES.get(row.get('backend', 'postgresql'), row.get('backend'))} "
            f"| {row.get('timing', 'fast')} | {row['title']} | {injected(row)} "
            f"| {row['jobs']} ({row['failed']}) | {row['images']} / {row['images_expected']} "
            f"| {money(row['cost_usd'])} {cost_ok} {money(row['provider_cost_usd'])} "
            f"| {row['webhook_deliveries']} | {row['duplicates_ignored']} "
            f"| {cell(row.get('recovered_by_reconciler'))} | {submissions} "
            f"| {cell(row.get('time_to_reconcile_s'), ' s')} | {recovery(row)} "
            f"| {cell(row.get('campaign_s'), ' s')} |"
        )
    return lines


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and Decimal(a) == Decimal(b)


def section(row: dict[str, Any]) -> list[str]:
    figures = {
        k: v
        for k, v in row.items()
        if k not in ("scenario", "title", "test", "proves", "injected") and v not in (None, {}, "")
    }
    return [
        f"### {row['scenario']}",
        "",
        f"**{row['title']}.** {row['proves']}",
        "",
        f"Test: `{row['test']}`",
        "",
        "```json",
        json.dumps(figures, indent=None, separators=(", ", ": ")),
        "```",
        "",
    ]


def revision() -> str | None:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def default_recovery_settings() -> str:
    """The defaults of the settings a *defaults* scenario leaves alone, from remixq.config."""
    fields = {
        str(alias): field.default
        for field in Settings.model_fields.values()
        for alias in getattr(field.validation_alias, "choices", ())
    }
    return " ".join(f"{name}={fields[name]:g}" for name in RECOVERY_SETTINGS if name in fields)


def render(rows: list[dict[str, Any]], *, duration: float | None, commit: str | None = None) -> str:
    settings = " ".join(f"{k}={v}" for k, v in FAST_SETTINGS.items())
    knobs = ", ".join(f"{k}={v}" for k, v in DEFAULT_KNOBS.items())
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    took = f" in {duration:.0f} s" if duration else ""
    lines = [
        "# Reliability: the chaos suite",
        "",
        "Generated by `tests/support/reliability_report.py` from a green run of `pytest -m chaos`"
        f" ({len(rows)} scenarios{took}, {when}, "
        + (f"commit `{commit}`, " if commit else "")
        + f"{os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}). Rerun and regenerate with one command:",
        "",
        "```sh",
        RERUN,
        "```",
        "",
        "`make chaos` runs the same scenarios without rewriting this page. Each scenario starts",
        "the real processes (`remixq simulator`, `remixq receiver` under gunicorn, `remixq worker`",
        "and `remixq beat`) on PostgreSQL and a private Redis, or on the embedded default (SQLite",
        "and the server-less SQLite broker; the worker runs beat itself) for the scenarios marked",
        "`-sqlite`, submits a campaign built from `remixq/examples/demo.jsonl` (three models, 1 to",
        "4 results a job), injects its fault, and waits with a deadline until every job is final.",
        "Then it asserts, every time:",
        "",
        "- every job is final: completed, or failed only where the provider failed the task;",
        "- images stored == the sum of numberResults of the completed jobs, none stored twice;",
        "- the stored cost equals the simulator's `cost_total` exactly (Decimal, to 1e-10 USD);",
        "- the simulator accepted every taskUUID exactly once, however often it was submitted;",
        "- no webhook inbox row is left half-applied, and every image a webhook named is stored.",
        "",
        (
            "*fast* scenarios shorten the timings for test speed through the environment: "
            f"`{settings}`. *defaults* scenarios time a recovery, so they keep these at their "
            f"defaults, the figure a user gets: `{default_recovery_settings()}` (and only the "
            "submission backoff shortened). Simulated results take "
            f"{knobs} ms unless the scenario says otherwise."
        ),
        "",
        "## Figures",
        "",
        "*Webhook deliveries*: 2xx answers the simulator got. *Duplicates ignored*: result",
        "webhooks in the inbox beyond the one that stored each image (a duplicate, a redelivery",
        "after an answer that never reached the provider, or a late webhook for an image the",
        "reconciler had already stored): each one stored nothing and moved no cent. *Recovered",
        "by getResponse*: images first stored from a reconciler poll, not from a webhook.",
        "*Submissions per task*: `POST /v1` naming the taskUUID (the simulator's count). *Time",
        "to reconcile*: from the moment the provider held every task to the last final job",
        "(it includes the generation time of the last tasks). *Time to recover*: from the end",
        "of the fault (the process back, the outage over, the campaign resumed) to the last",
        "final job; for lost webhooks, which never end, the longest a lost result waited from its",
        "task's acceptance to the poll that stored it. *Campaign*: from `remixq submit` to the",
        "last final job.",
        "",
        *table(rows),
        "",
        *FINDINGS,
        "",
        "## Scenarios",
        "",
    ]
    for row in rows:
        lines += section(row)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, help="figures already recorded")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--revision", help="the code's revision (default: git describe)")
    args = parser.parse_args(argv)
    duration = None
    if args.source is None:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "reliability.jsonl"
            started = time.monotonic()
            code = run_suite(source)
            duration = time.monotonic() - started
            if code != 0:
                print("the chaos suite failed; docs/reliability.md left as it was", file=sys.stderr)
                return code
            rows = load(source)
    else:
        rows = load(args.source)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(rows, duration=duration, commit=args.revision or revision()))
    print(f"wrote {args.out} ({len(rows)} scenarios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
