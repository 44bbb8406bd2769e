"""Benchmarks 3 and 4: whole campaigns, end to end, at growing sizes.

The simulator (zero latency; mixed envelopes; a share of webhooks delivered twice), the receiver
(`remixq receiver`), a worker (`remixq worker`) run as deployed, each on its own; the campaign
file is validated, stored and enqueued by `remixq submit`, as a producer would. The clock runs
from the start of `remixq submit` to the last job's `finished_at`. Each process's CPU is read
from /proc, its peak memory is its tree's peak resident set (the sum over the processes of the
tree), and the database's size is that of its three tables after the campaign.

`backend="embedded"` runs the same on the embedded default, as `remixq demo` does: no database
or broker URL, so SQLite files in the data folder for both the database and kombu's SQLAlchemy
transport, and the worker schedules the relay and the reconciler itself (`--beat`). Its sizes
are those of the files (the database's, and the broker's apart).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests as http
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

from bench import procs
from bench.env import BenchEnv, database_name
from remixq import migrate
from remixq.cli.processes import Process, free_port, start, wait_until
from remixq.config import Settings
from remixq.examples import campaign_lines
from remixq.models import Image, Job
from remixq.states import FINAL

TABLES = ("jobs", "images", "webhook_events")


@dataclass
class CampaignResult:
    jobs: int
    images: int
    expected_images: int
    wall_s: float
    submit_s: float
    cpu_s: dict[str, float]
    peak_rss: dict[str, int]
    table_bytes: dict[str, int]
    statuses: dict[str, int]
    webhooks: dict[str, int] = field(default_factory=dict)
    backend: str = "postgres"
    # With asset fetching (`assets=True`): from `remixq submit`'s start to the last copy stored,
    # and from the last job's end to it; the copies by status; the stored bytes.
    assets_s: float | None = None
    assets_after_jobs_s: float | None = None
    asset_statuses: dict[str, int] = field(default_factory=dict)
    stored_bytes: int = 0
    # Seconds from an image's row (its webhook's commit) to its copy: median and 99th percentile.
    copy_delay_s: tuple[float, float] | None = None
    # Jobs per second the campaign was paced at (None: as fast as the machine goes).
    pace: float | None = None
    # Each process tree's resident set through the run: (seconds from `remixq submit`'s start,
    # {process: bytes}); with `assets`, the background pool apart from the worker.
    memory: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.jobs / self.wall_s if self.wall_s else 0.0

    def cpu_ms_per_job(self, name: str) -> float:
        return self.cpu_s.get(name, 0.0) / self.jobs * 1000

    def cpu_ms_per_image(self, name: str) -> float:
        return self.cpu_s.get(name, 0.0) / self.images * 1000 if self.images else 0.0

    def memory_at(self, name: str, fraction: float) -> int:
        """The process's resident set at the last sample taken by `fraction` of the run."""
        if not self.memory:
            return 0
        end = self.memory[-1][0] * fraction
        return next((m.get(name, 0) for t, m in reversed(self.memory) if t <= end), 0)

    def memory_growth(self, name: str) -> float:
        """How far the process's resident set rose in the second half of the run above its peak
        in the first half: a plateau reached early is 0, a leak grows with the work done."""
        if len(self.memory) < 4:
            return 0.0
        half = self.memory[-1][0] / 2
        first = max(m.get(name, 0) for t, m in self.memory if t <= half)
        second = max(m.get(name, 0) for t, m in self.memory if t > half)
        return second / first - 1 if first else 0.0

    @property
    def bytes_per_job(self) -> float:
        return sum(self.table_bytes.values()) / self.jobs


def _groups(started: dict[str, Process], background: int | None) -> dict[str, list[int]]:
    """The pids of each process tree, the worker's background pool apart when it is known."""
    groups = {name: procs.pids(proc) for name, proc in started.items()}
    if background:
        groups["worker"] = [pid for pid in groups["worker"] if pid != background]
        groups["assets worker"] = [background]
    return groups


def _http_ok(url: str) -> bool:
    try:
        return http.get(url, timeout=1).status_code == 200
    except http.RequestException:
        return False


def _count_open(engine: Engine, campaign_id: int) -> int:
    with Session(engine) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.campaign_id == campaign_id)
                .where(Job.status.not_in([s.value for s in FINAL]))
            )
            or 0
        )


def run_campaign(
    env: BenchEnv,
    *,
    jobs_count: int,
    duplicate_rate: float = 0.05,
    timeout: float | None = None,
    receiver_args: tuple[str, ...] = (),
    worker_args: tuple[str, ...] = (),
    backend: str = "postgres",
    simulator_args: tuple[str, ...] = (),
    assets: bool = False,
    pace: float | None = None,
) -> CampaignResult:
    """`assets`: the images' copies are made too, with `remixq beat` sweeping (the embedded
    default's worker runs beat itself), and the clock also runs to the last copy stored. The
    copies (and beat's ticks) run on the worker's background pool, a child process, whose CPU
    and memory are then counted apart from the rest of the worker's, as the assets worker's.
    `pace`: jobs per second, below what the machine can do, through the provider rate limit
    (REMIXQ_RATE_LIMIT counts calls, each of up to REMIXQ_SUBMIT_BATCH jobs)."""
    # Each wait's deadline: 15 minutes, or 30 ms per job, so that a large campaign on a loaded
    # machine is not cut short (docs/benchmarks.md has what such a campaign takes).
    timeout = timeout or max(900.0, jobs_count * 0.03)
    sim_port, receiver_port = free_port(), free_port()
    process_env = env.env(
        REMIXQ_SIMULATOR_PORT=str(sim_port), REMIXQ_RECEIVER_PORT=str(receiver_port)
    )
    if assets:  # what an earlier campaign of this run stored is not this one's
        copied = Path(process_env.get("REMIXQ_DATA_DIR", "remixq-data")) / "images"
        shutil.rmtree(copied, ignore_errors=True)
    if pace is not None:
        process_env["REMIXQ_RATE_LIMIT"] = str(pace / Settings.model_fields["submit_batch"].default)
    if backend == "embedded":
        engine, process_env = _embedded(env, jobs_count, process_env)
    else:
        engine = env.fresh_database()
    started: dict[str, Process] = {}
    database = database_name(env.db_url)
    try:
        started["simulator"] = start(
            f"c-simulator-{sim_port}",
            [
                "simulator",
                "--port",
                str(sim_port),
                "--webhook-envelope",
                "mixed",
                "--webhook-duplicate-rate",
                str(duplicate_rate),
                "--random-seed",
                "6",
                *simulator_args,
            ],
            env=process_env,
            log_dir=env.logs,
            new_session=True,
        )
        started["receiver"] = start(
            f"c-receiver-{receiver_port}",
            ["receiver", "--port", str(receiver_port), *receiver_args],
            env=process_env,
            log_dir=env.logs,
            new_session=True,
        )
        started["worker"] = start(
            f"c-worker-{sim_port}",
            ["worker", "--loglevel", "WARNING", *worker_args],
            env=process_env,
            log_dir=env.logs,
            new_session=True,
        )
        if assets and backend != "embedded":
            started["beat"] = start(
                f"c-beat-{sim_port}",
                ["beat", "--loglevel", "WARNING"],
                env=process_env,
                log_dir=env.logs,
                new_session=True,
            )
        alive = list(started.values())
        wait_until(
            lambda: _http_ok(f"http://127.0.0.1:{sim_port}/_control/stats"),
            timeout=60,
            what="simulator",
            alive=alive,
        )
        wait_until(
            lambda: _http_ok(f"http://127.0.0.1:{receiver_port}/healthz"),
            timeout=60,
            what="receiver",
            alive=alive,
        )
        time.sleep(2)  # the worker connects to the broker (no readiness probe without gossip)
        # The copies (and beat's ticks) run on the worker's background pool, a child process:
        # with `assets`, its CPU and memory are counted apart from the rest of the worker's.
        background = None
        if assets:
            found: list[int] = []

            def pool_started() -> bool:
                found.append(procs.pool_pid(started["worker"], "background") or 0)
                return bool(found[-1])

            wait_until(
                pool_started,
                timeout=60,
                what="the worker's background pool",
                alive=list(started.values()),
            )
            background = found[-1]
        lines = campaign_lines(jobs_count)
        expected_images = sum(int(line.get("numberResults", 1)) for line in lines)
        path = env.root / f"campaign-{jobs_count}.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        cpu0 = {name: procs.cpu(proc) for name, proc in started.items()}
        if background:
            cpu0["assets worker"] = procs.cpu_seconds([background])
        backends = procs.BackendCPU(database)
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        memory = procs.MemorySeries(lambda: _groups(started, background))
        with memory:
            t0 = time.time()
            done = subprocess.run(
                [sys.executable, "-m", "remixq.cli", "submit", str(path), "--json"],
                env={**_os_environ(), **process_env},
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            submit_s = time.time() - t0
            if done.returncode != 0:
                raise RuntimeError(f"remixq submit failed: {done.stderr[-2000:]}")
            children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            campaign_id = int(json.loads(done.stdout)["campaign_id"])
            wait_until(
                lambda: _count_open(engine, campaign_id) == 0,
                timeout=timeout,
                interval=0.25,
                what=f"{jobs_count} jobs to finish",
                alive=alive,
            )
            # Duplicated webhooks may still be arriving: wait until every image is stored.
            wait_until(
                lambda: _images(engine) >= expected_images,
                timeout=60,
                interval=0.25,
                what="every image",
                alive=alive,
            )
            time.sleep(1)  # the last duplicates
            if assets:
                wait_until(
                    lambda: _pending_assets(engine) == 0,
                    timeout=timeout,
                    interval=0.25,
                    what="every image's copy",
                    alive=alive,
                )
        cpu = {name: procs.cpu(proc) - cpu0[name] for name, proc in started.items()}
        peak = {name: procs.peak_rss(proc) for name, proc in started.items()}
        if background:
            cpu["assets worker"] = procs.cpu_seconds([background]) - cpu0["assets worker"]
            cpu["worker"] -= cpu["assets worker"]
            peak["assets worker"] = procs.peak_rss_bytes([background])
            peak["worker"] -= peak["assets worker"]
        if backend != "embedded":
            cpu["postgres"] = backends.spent()
        cpu["producer (remixq submit)"] = (children1.ru_utime - children0.ru_utime) + (
            children1.ru_stime - children0.ru_stime
        )
        webhooks = http.get(f"http://127.0.0.1:{sim_port}/_control/stats?tasks=0", timeout=10)
        with Session(engine) as session:
            ended = session.scalar(
                select(func.max(Job.finished_at)).where(Job.campaign_id == campaign_id)
            )
            statuses = dict(
                session.execute(
                    select(Job.status, func.count())
                    .where(Job.campaign_id == campaign_id)
                    .group_by(Job.status)
                ).all()
            )
            images = _images(engine)
            if backend == "embedded":
                sizes = _file_sizes(Path(process_env["REMIXQ_DATA_DIR"]))
            else:
                sizes = {
                    table: int(
                        session.scalar(text(f"SELECT pg_total_relation_size('{table}')")) or 0
                    )
                    for table in TABLES
                }
            copies = dict(
                session.execute(
                    select(Image.asset_status, func.count()).group_by(Image.asset_status)
                ).all()
            )
            last_copy = session.scalar(select(func.max(Image.fetched_at)))
            delay = None
            if assets and backend != "embedded":
                row = session.execute(
                    text(
                        "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY"
                        " extract(epoch FROM fetched_at - created_at)) FROM images"
                        " WHERE fetched_at IS NOT NULL"
                    )
                ).scalar()
                delay = (float(row[0]), float(row[1])) if row else None
        wall = (ended.timestamp() if ended else time.time()) - t0
        extra: dict[str, Any] = {}
        if assets:
            images_dir = Path(process_env.get("REMIXQ_DATA_DIR", "remixq-data")) / "images"
            extra = {
                "assets_s": (last_copy.timestamp() - t0) if last_copy else None,
                "assets_after_jobs_s": (
                    last_copy.timestamp() - ended.timestamp() if last_copy and ended else None
                ),
                "asset_statuses": copies,
                "stored_bytes": sum(p.stat().st_size for p in images_dir.rglob("*") if p.is_file()),
                "copy_delay_s": delay,
            }
        return CampaignResult(
            jobs=jobs_count,
            images=images,
            expected_images=expected_images,
            wall_s=wall,
            submit_s=submit_s,
            cpu_s=cpu,
            peak_rss=peak,
            table_bytes=sizes,
            statuses=statuses,
            webhooks=dict(webhooks.json().get("webhooks", {})),
            backend=backend,
            pace=pace,
            memory=memory.samples,
            **extra,
        )
    finally:
        for proc in reversed(list(started.values())):
            proc.stop()
        engine.dispose()


def _embedded(
    env: BenchEnv, jobs_count: int, process_env: dict[str, str]
) -> tuple[Engine, dict[str, str]]:
    """A fresh data folder for the embedded default, its schema at head, and the processes'
    environment without a database or broker URL."""
    for name in ("REMIXQ_DATABASE_URL", "REMIXQ_BROKER_URL"):
        if name in os.environ:
            raise RuntimeError(f"{name} is set: the embedded default would not be measured")
    data = env.root / f"embedded-{jobs_count}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    url = f"sqlite:///{(data / 'remixq.sqlite').resolve()}"
    migrate.upgrade(url)
    embedded_env = {
        k: v
        for k, v in process_env.items()
        if k not in ("REMIXQ_DATABASE_URL", "REMIXQ_BROKER_URL")
    }
    embedded_env["REMIXQ_DATA_DIR"] = str(data)
    # The bench only reads: a plain engine, without the BEGIN IMMEDIATE of remixq's writers.
    return create_engine(url, connect_args={"timeout": 30}), embedded_env


def _file_sizes(data: Path) -> dict[str, int]:
    """The embedded default's files: the database (with its WAL) and the broker's."""
    sizes = {"database file": 0, "broker file": 0}
    for path in data.glob("*.sqlite*"):
        key = "broker file" if path.name.startswith("broker") else "database file"
        sizes[key] += path.stat().st_size
    return sizes


def _pending_assets(engine: Engine) -> int:
    with Session(engine) as session:
        return (
            session.scalar(
                select(func.count()).select_from(Image).where(Image.asset_status == "pending")
            )
            or 0
        )


def _images(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Image)) or 0


def _os_environ() -> dict[str, Any]:
    import os

    return dict(os.environ)
