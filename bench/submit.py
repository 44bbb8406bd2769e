"""Benchmark 2: submission, from "committed" to "acknowledged by the provider".

A real `remixq worker` (with the no-op task of `bench.noop` loaded beside the real one) drains,
in the same process:

- N no-op messages: the ceiling of this Celery set-up (broker, pool, acks, logging);
- N committed jobs, published by the real producer (one message per REMIXQ_SUBMIT_BATCH jobs)
  and submitted to the simulator, which answers with the configured latency and drops every
  webhook (results are not part of this measurement).

The clock starts when the jobs are committed (before publishing) and stops at the last job's
`submitted_at`; the no-op run is timed from the first publish to an empty queue with nothing
unacknowledged.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis
import requests as http
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bench import procs
from bench.env import BenchEnv, database_name
from bench.noop import NOOP_TASK
from bench.profiles import Profile, profile_calls
from remixq import jobs, producing
from remixq.campaigns import read_campaign
from remixq.cli.processes import Process, free_port, start, wait_until
from remixq.config import Settings, load_settings
from remixq.db import make_sessionmaker, transaction
from remixq.examples import campaign_lines
from remixq.models import Job
from worker.app import create_celery
from worker.names import QUEUE, SUBMIT_TASK
from worker.producer import enqueue
from worker.ratelimit import PACE_MARGIN
from worker.runtime import Runtime


@dataclass
class WorkerSetup:
    """A worker configuration: celery options and the submission settings it runs with."""

    pool: str = "threads"
    concurrency: int = 32
    batch: int | None = None  # REMIXQ_SUBMIT_BATCH; None: the deployed default
    rate_limit: float | None = None  # REMIXQ_RATE_LIMIT; None: the deployed default

    def label(self, settings: Settings) -> str:
        return (
            f"{self.pool} x{self.concurrency}, batch {self.batch or settings.submit_batch}, "
            f"limit {self.rate_limit or settings.rate_limit:g} req/s"
        )

    def env(self) -> dict[str, str]:
        env = {}
        if self.batch is not None:
            env["REMIXQ_SUBMIT_BATCH"] = str(self.batch)
        if self.rate_limit is not None:
            env["REMIXQ_RATE_LIMIT"] = str(self.rate_limit)
        return env

    def args(self) -> list[str]:
        return [f"--pool={self.pool}", f"--concurrency={self.concurrency}"]


@dataclass
class Drain:
    label: str
    items: int
    seconds: float
    worker_cpu_s: float
    simulator_cpu_s: float = 0.0
    db_cpu_s: float = 0.0
    messages: int = 0
    requests: int = 0
    failed: int = 0

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def row(self) -> dict[str, Any]:
        n = self.items or 1
        return {
            "run": self.label,
            "items": self.items,
            "messages": self.messages,
            "provider requests": self.requests,
            "seconds": round(self.seconds, 2),
            "items/s": round(self.rate),
            "worker CPU ms/item": round(self.worker_cpu_s / n * 1000, 3),
            "simulator CPU ms/item": round(self.simulator_cpu_s / n * 1000, 3),
            "postgres CPU ms/item": round(self.db_cpu_s / n * 1000, 3),
            "failed": self.failed,
        }


@dataclass
class SubmitResult:
    setup: str
    latency_ms: float
    noop: Drain | None
    real: Drain
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return self.real.rate / self.noop.rate if self.noop and self.noop.rate else None


class Rig:
    """Simulator + worker on the bench database and broker, and the means to feed them."""

    def __init__(self, env: BenchEnv, engine: Engine, setup: WorkerSetup, latency_ms: float):
        self.env, self.engine, self.setup = env, engine, setup
        self.sim_port = free_port()
        self.process_env = env.env(
            REMIXQ_SIMULATOR_PORT=str(self.sim_port),
            REMIXQ_RECEIVER_PORT=str(free_port()),  # nobody listens: webhooks are dropped
            **setup.env(),
        )
        self.settings = load_settings(
            database_url=env.db_url,
            broker_url=env.broker_url,
            webhook_secret="unused",
            data_dir=env.root / "data",
            simulator_port=self.sim_port,
            **({"submit_batch": setup.batch} if setup.batch else {}),
        )
        self.app = create_celery(self.settings)
        self.sessions = make_sessionmaker(engine)
        self.redis = redis.Redis.from_url(env.broker_url)
        self.latency_ms = latency_ms
        self.simulator: Process | None = None
        self.worker: Process | None = None

    def __enter__(self) -> Rig:
        self.simulator = start(
            f"simulator-{self.sim_port}",
            [
                "simulator",
                "--port",
                str(self.sim_port),
                "--webhook-drop-rate",
                "1",
                "--submit-latency-ms",
                str(self.latency_ms),
                "--random-seed",
                "6",
            ],
            env=self.process_env,
            log_dir=self.env.logs,
            new_session=True,
        )
        self.worker = start(
            f"worker-{self.sim_port}",
            [
                "worker",
                "--include",
                "bench.noop",
                *self.setup.args(),
            ],
            env=self.process_env,
            log_dir=self.env.logs,
            new_session=True,
        )
        wait_until(
            lambda: _http_ok(f"http://127.0.0.1:{self.sim_port}/_control/stats"),
            timeout=60,
            what="simulator",
            alive=[self.simulator],
        )
        self.noop(50, timeout=60)  # the worker is up and consuming
        return self

    def __exit__(self, *_: object) -> None:
        for proc in (self.worker, self.simulator):
            if proc is not None:
                proc.stop()
        self.app.close()

    def _alive(self) -> list[Process]:
        return [p for p in (self.worker, self.simulator) if p is not None]

    def drained(self) -> bool:
        pipe = self.redis.pipeline()
        pipe.llen(QUEUE)
        pipe.hlen("unacked")
        waiting, unacked = pipe.execute()
        return waiting == 0 and unacked == 0

    def sim_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = http.get(
            f"http://127.0.0.1:{self.sim_port}/_control/stats?tasks=0", timeout=10
        ).json()
        return stats

    def noop(self, count: int, *, timeout: float) -> Drain:
        assert self.worker is not None
        cpu0 = procs.cpu(self.worker)
        started = time.monotonic()
        with self.app.producer_or_acquire() as producer:
            for index in range(count):
                self.app.send_task(NOOP_TASK, args=[index], producer=producer)
        wait_until(
            self.drained, timeout=timeout, interval=0.01, what="no-op drain", alive=self._alive()
        )
        seconds = time.monotonic() - started
        return Drain("no-op task", count, seconds, procs.cpu(self.worker) - cpu0, messages=count)

    def create_jobs(self, count: int) -> list[int]:
        path = self.env.root / f"submit-{count}.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in campaign_lines(count)))
        new_jobs = read_campaign(path)
        with transaction(self.sessions) as session:
            campaign = producing.get_or_create_campaign(
                session, name=f"bench-submit-{time.monotonic_ns()}", source=str(path)
            )
            return producing.create_jobs(session, campaign=campaign, new_jobs=new_jobs)

    def submit(self, job_ids: list[int], *, timeout: float) -> Drain:
        assert self.worker is not None and self.simulator is not None
        database = database_name(self.env.db_url)
        stats0 = self.sim_stats()
        cpu0, sim0 = procs.cpu(self.worker), procs.cpu(self.simulator)
        backends = procs.BackendCPU(database)
        first, last = min(job_ids), max(job_ids)
        committed = time.time()
        enqueue(self.app, self.sessions, job_ids, batch=self.settings.submit_batch)

        def done() -> bool:
            with Session(self.engine) as session:
                open_jobs = session.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(Job.id.between(first, last))
                    .where(Job.status.in_(("pending", "queued", "submitting")))
                )
            return open_jobs == 0

        wait_until(done, timeout=timeout, interval=0.05, what="submissions")
        with Session(self.engine) as session:
            ended = session.scalar(
                select(func.max(Job.submitted_at)).where(Job.id.between(first, last))
            )
            failed = session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.id.between(first, last), Job.status == "failed")
            )
        stats1 = self.sim_stats()
        seconds = (ended.timestamp() if ended else time.time()) - committed
        batch = self.settings.submit_batch
        return Drain(
            "submission",
            len(job_ids),
            seconds,
            procs.cpu(self.worker) - cpu0,
            procs.cpu(self.simulator) - sim0,
            backends.spent(),
            messages=-(-len(job_ids) // batch),
            requests=stats1["submissions"] - stats0["submissions"],
            failed=failed or 0,
        )


def _http_ok(url: str) -> bool:
    try:
        return http.get(url, timeout=1).status_code == 200
    except http.RequestException:
        return False


def run_submission(
    env: BenchEnv,
    *,
    jobs_count: int,
    setup: WorkerSetup,
    latency_ms: float = 0.0,
    with_noop: bool = True,
    timeout: float = 300,
) -> SubmitResult:
    engine = env.fresh_database()
    try:
        with Rig(env, engine, setup, latency_ms) as rig:
            noop = rig.noop(jobs_count, timeout=timeout) if with_noop else None
            job_ids = rig.create_jobs(jobs_count)
            real = rig.submit(job_ids, timeout=timeout)
            return SubmitResult(setup.label(rig.settings), latency_ms, noop, real)
    finally:
        engine.dispose()


def expected_rate(setup: WorkerSetup, settings: Settings, latency_ms: float) -> float:
    """What a configuration can reach at most, to size a run: requests in flight over the
    provider's latency, and the global limit (its pace: worker.ratelimit), times the batch."""
    batch = setup.batch or settings.submit_batch
    limit = (setup.rate_limit or settings.rate_limit) / (1 + PACE_MARGIN)
    in_flight = min(setup.concurrency, settings.max_in_flight)
    per_request = max(latency_ms / 1000, 0.01)
    return min(in_flight / per_request, limit) * batch


def profile_submission(env: BenchEnv, *, jobs_count: int = 2000) -> Profile:
    """The worker's task body (`worker.tasks.submit`: permit, claim, one provider request per
    batch, record) called in process, batch by batch, against the simulator at zero latency."""
    from worker.tasks import submit

    engine = env.fresh_database()
    try:
        setup = WorkerSetup(rate_limit=100_000)  # the limit's waits are not CPU; lift them
        rig = Rig(env, engine, setup, 0.0)
        rig.simulator = start(
            f"p-simulator-{rig.sim_port}",
            [
                "simulator",
                "--port",
                str(rig.sim_port),
                "--webhook-drop-rate",
                "1",
            ],
            env=rig.process_env,
            log_dir=env.logs,
            new_session=True,
        )
        try:
            wait_until(
                lambda: _http_ok(f"http://127.0.0.1:{rig.sim_port}/_control/stats"),
                timeout=60,
                what="simulator",
                alive=[rig.simulator],
            )
            settings = load_settings(
                database_url=env.db_url,
                broker_url=env.broker_url,
                webhook_secret="unused",
                data_dir=env.root / "data",
                simulator_port=rig.sim_port,
                rate_limit=100_000,
            )
            runtime = Runtime(settings)
            app = create_celery(settings, runtime=runtime)
            task = app.tasks[SUBMIT_TASK]
            ids = rig.create_jobs(jobs_count + 200)
            batch = settings.submit_batch
            batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
            with transaction(rig.sessions) as session:
                jobs.mark_enqueued(session, job_ids=ids)
            for warm in batches[:20]:
                submit(task, runtime, warm)
            measured = batches[20:]
            profile = profile_calls(
                f"submission (worker task body, in process, batches of {batch})",
                [functools.partial(submit, task, runtime, b) for b in measured],
                runtime.engine,
                env.root,
            )
            profile.operations = sum(len(b) for b in measured)  # per job, not per batch
            runtime.dispose()
            app.close()
            with Session(engine) as session:
                submitted = session.scalar(
                    select(func.count()).select_from(Job).where(Job.status == "submitted")
                )
            if submitted != len(ids):
                raise RuntimeError(f"profiled submission left {len(ids) - (submitted or 0)} jobs")
            return profile
        finally:
            rig.simulator.stop()
            rig.app.close()
    finally:
        engine.dispose()
