"""Benchmark 1: webhook ingest through the receiver as deployed (gunicorn, PostgreSQL), against a
bare Flask endpoint under the same gunicorn settings, posted the same bodies by the same load
generator in the same run.

The order is bare, receiver, bare: the ratio is taken against the mean of the two bare runs so
that a change of the machine's load during the run shows as a spread, not as a bias. The first
`warmup` posts of each run are sent before the clock starts (they are stored all the same).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests as http
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bench import procs
from bench.corpus import Corpus, insert_jobs, jobs_for_webhooks, webhooks_for
from bench.env import SECRET, BenchEnv, database_name
from bench.loadgen import LoadResult, Request, run_load
from bench.profiles import Profile, profile_calls
from remixq.cli.processes import Process, free_port, start, wait_until
from remixq.models import Image, Job, WebhookEvent

# The naive handler's run: its rate is what is compared, and at a tenth of the receiver's it
# would spend a third of the section on a full corpus.
NAIVE_WEBHOOKS = 3_000


@dataclass
class ServerRun:
    label: str
    load: LoadResult
    server_cpu_s: float
    db_cpu_s: float
    server_peak_rss: int

    def row(self) -> dict[str, Any]:
        n = self.load.requests or 1
        return {
            "server": self.label,
            "webhooks": self.load.requests,
            "webhooks/s": round(self.load.rate),
            "p50 ms": round(self.load.percentile_ms(50), 2),
            "p99 ms": round(self.load.percentile_ms(99), 2),
            "server CPU ms/req": round(self.server_cpu_s / n * 1000, 3),
            "postgres CPU ms/req": round(self.db_cpu_s / n * 1000, 3),
            "client CPU ms/req": round(self.load.client_cpu_s / n * 1000, 3),
            "statuses": dict(sorted(self.load.statuses.items())),
        }


@dataclass
class IngestResult:
    settings: str
    corpus: dict[str, Any]
    runs: list[ServerRun]
    stored: dict[str, int]
    ratio: float  # the median of the pairs' ratios
    pair_ratios: list[float]  # each receiver run over the mean of the bare runs beside it
    naive_ratio: float | None
    lost: int
    bare_spread: float
    sent_images: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def receiver(self) -> ServerRun:
        """The receiver run whose ratio is the median."""
        receivers = [r for r in self.runs if r.label.startswith("receiver")]
        return receivers[self.pair_ratios.index(self.ratio)]


def _start_server(env: BenchEnv, kind: str, port: int, server_args: list[str]) -> Process:
    proc = start(
        f"{kind}-{port}",
        [kind, "--port", str(port), *server_args],
        module="bench.serve",
        env=env.env(),
        log_dir=env.logs,
        new_session=True,
    )

    def ready() -> bool:
        try:
            return http.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 404)
        except http.RequestException:
            return False

    wait_until(ready, timeout=60, what=f"{kind} server", alive=[proc])
    return proc


def _measure(
    label: str,
    proc: Process,
    port: int,
    requests: list[Request],
    *,
    warmup: int,
    connections: int,
    client_processes: int,
    database: str,
) -> ServerRun:
    run_load("127.0.0.1", port, requests[:warmup], connections=connections, processes=1)
    cpu_before = procs.cpu(proc)
    backends = procs.BackendCPU(database)
    load = run_load(
        "127.0.0.1",
        port,
        requests[warmup:],
        connections=connections,
        processes=client_processes,
    )
    server_cpu = procs.cpu(proc) - cpu_before
    db_cpu = 0.0 if label.startswith("bare") else backends.spent()
    if load.errors:
        raise RuntimeError(f"{label}: load generator errors: {load.errors[:3]}")
    return ServerRun(label, load, server_cpu, db_cpu, procs.peak_rss(proc))


def build_corpus(engine: Engine, webhooks: int) -> Corpus:
    jobs = insert_jobs(engine, jobs_for_webhooks(webhooks))
    corpus = webhooks_for(jobs, SECRET.encode())
    while len(corpus.requests) < webhooks:
        jobs += insert_jobs(engine, max(10, (webhooks - len(corpus.requests)) // 2))
        corpus = webhooks_for(jobs, SECRET.encode())
    return corpus


def settle(engine: Engine) -> None:
    """VACUUM ANALYZE and CHECKPOINT after loading the jobs, as a database in service would be:
    statistics the planner can use, and no autovacuum or checkpoint of the load landing inside
    one of the measured runs."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
        connection.exec_driver_sql("CHECKPOINT")


def stored_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            "images": session.scalar(select(func.count()).select_from(Image)) or 0,
            "inbox rows": session.scalar(select(func.count()).select_from(WebhookEvent)) or 0,
            "jobs completed": session.scalar(
                select(func.count()).select_from(Job).where(Job.status == "completed")
            )
            or 0,
            "jobs": session.scalar(select(func.count()).select_from(Job)) or 0,
        }


def run_ingest(
    env: BenchEnv,
    *,
    webhooks: int,
    connections: int = 16,
    client_processes: int = 2,
    warmup: int = 500,
    server_args: list[str] | None = None,
    naive: bool = True,
    pairs: int = 1,
) -> IngestResult:
    """bare, receiver, bare, receiver, ..., bare (`pairs` receiver runs, each on jobs of its own,
    each compared with the bare runs beside it), then the naive handler: the same kind of
    bodies, the same server settings, in turn. The ratio is the median of the pairs'."""
    server_args = server_args or []
    engine = env.fresh_database()
    try:
        corpora = [build_corpus(engine, webhooks) for _ in range(pairs)]
        settle(engine)
        ports = {kind: free_port() for kind in ("bare", "receiver", "naive")}
        started: dict[str, Process] = {}
        try:
            for kind in ("bare", "receiver", "naive") if naive else ("bare", "receiver"):
                started[kind] = _start_server(env, kind, ports[kind], server_args)
            common: dict[str, Any] = {
                "warmup": warmup,
                "connections": connections,
                "client_processes": client_processes,
                "database": database_name(env.db_url),
            }

            def measure(label: str, kind: str, requests: list[Request]) -> ServerRun:
                return _measure(label, started[kind], ports[kind], requests, **common)

            runs = [measure("bare Flask (1)", "bare", corpora[0].requests)]
            for index, corpus in enumerate(corpora, start=1):
                suffix = f" ({index})" if pairs > 1 else ""
                runs.append(measure(f"receiver{suffix}", "receiver", corpus.requests))
                runs.append(measure(f"bare Flask ({index + 1})", "bare", corpus.requests))
            stored = stored_counts(engine)  # before the naive handler adds its own rows
            if naive:
                sample = corpora[0].requests[: NAIVE_WEBHOOKS + warmup]
                runs.append(measure("naive Flask + SQLAlchemy", "naive", sample))
        finally:
            for proc in started.values():
                proc.stop()
    finally:
        engine.dispose()
    bare = [r.load.rate for r in runs if r.label.startswith("bare")]
    receivers = [r.load.rate for r in runs if r.label.startswith("receiver")]
    pair_ratios = [rate / statistics.mean(bare[i : i + 2]) for i, rate in enumerate(receivers)]
    naive_run = next((r for r in runs if r.label.startswith("naive")), None)
    posted = sum(len(c.requests) for c in corpora)
    sent_images = sum(c.distinct_images for c in corpora)
    shapes: Counter[str] = Counter()
    for corpus in corpora:
        shapes.update(corpus.shapes)
    return IngestResult(
        settings=" ".join(server_args) or "deployed defaults",
        corpus={
            "webhooks": len(corpora[0].requests),
            "distinct images": corpora[0].distinct_images,
            "jobs": corpora[0].jobs,
            **corpora[0].shapes,
        },
        runs=runs,
        stored=stored,
        ratio=statistics.median_low(pair_ratios),
        pair_ratios=pair_ratios,
        naive_ratio=naive_run.load.rate / statistics.mean(bare[-2:]) if naive_run else None,
        lost=sent_images - stored["images"],
        bare_spread=(max(bare) - min(bare)) / statistics.mean(bare),
        sent_images=sent_images,
        notes=[
            f"inbox rows {stored['inbox rows']} of {posted} posted",
            f"jobs completed {stored['jobs completed']} of {stored['jobs']}",
        ],
    )


def profile_ingest(env: BenchEnv, *, webhooks: int = 3000) -> Profile:
    """The receiver's WSGI app called in process with pre-built requests, one at a time, under
    the profiler (its writer thread too: it starts with the first call)."""
    from werkzeug.test import EnvironBuilder

    from remixq.config import load_settings
    from webhook_receiver.app import create_app
    from webhook_receiver.state import state

    engine = env.fresh_database()
    try:
        corpus = build_corpus(engine, webhooks)
        settle(engine)
    finally:
        engine.dispose()
    settings = load_settings(
        database_url=env.db_url, webhook_secret=SECRET, data_dir=env.root / "data"
    )
    statuses: Counter[str] = Counter()

    def start_response(status: str, _headers: Any, _exc: Any = None) -> Any:
        statuses[status.split()[0]] += 1
        return lambda _data: None

    def call(environ: dict[str, Any]) -> Callable[[], Any]:
        def run() -> None:
            for _chunk in app(environ, start_response):
                pass

        return run

    environs = [
        EnvironBuilder(
            path=r.path.partition("?")[0],
            query_string=r.path.partition("?")[2],
            method="POST",
            data=r.body,
            content_type="application/json",
        ).get_environ()
        for r in corpus.requests
    ]
    warm, measured = environs[:200], environs[200:]
    app = create_app(settings)  # a first app warms PostgreSQL's caches and the imports up
    for environ in warm:
        call(environ)()
    state(app).engine.dispose()
    app = create_app(settings)  # the profiled one: its writer starts under the profiler
    profile = profile_calls(
        "webhook ingest (receiver WSGI app and its writer thread, in process)",
        [call(e) for e in measured],
        state(app).engine,
        env.root,
        new_threads=True,
    )
    state(app).engine.dispose()
    if set(statuses) != {"200"}:
        raise RuntimeError(f"profiled webhooks were answered {dict(statuses)}")
    return profile
