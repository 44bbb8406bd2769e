"""Benchmark 1b: sustained webhook ingest, a minute or more at 16 connections against a freshly
started receiver (nothing excluded as warm-up), and the bare endpoint measured the same way in
the same run, with both load generators (bench/loadgen.py, and wrk in consecutive 10-s runs).

Reported per 10-s window: p50, p99, p99.9 and max latency; the receiver's resident memory (all
its processes, from /proc) at the start and the end; the stalls (requests over 100 ms, grouped
by overlap) with what the probes of bench.diag saw during each: full garbage collections and
hub blocking in the workers, and PostgreSQL's wait events, autovacuum and checkpoints.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests as http
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from bench import diag, procs
from bench import wrk as wrk_module
from bench.corpus import Corpus
from bench.env import BenchEnv, database_name
from bench.ingest import build_corpus, settle
from bench.loadgen import run_load
from bench.windows import Stall, Window, overall, stalls, windows
from remixq.cli.processes import Process, free_port, start, wait_until

STALL_MS = 100.0


@dataclass
class SustainedRun:
    label: str  # e.g. "receiver"
    generator: str  # "loadgen" or "wrk"
    seconds: float
    requests: int
    windows: list[Window]
    total: Window
    rss_start: int
    rss_end: int
    statuses: dict[str, int]
    server_cpu_s: float
    db_cpu_s: float
    repeated: int = 0
    stalls: list[Stall] = field(default_factory=list)
    evidence: diag.Evidence | None = None
    log_lines: list[str] = field(default_factory=list)
    rss_by_window: list[int] = field(default_factory=list)  # the server's RSS at each window's end

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def rss_growth(self) -> float:
        """From the end of the first window (past the first requests' allocations, which the
        start-to-end growth, `rss_growth_from_start`, includes) to the end of the run."""
        base = self.rss_by_window[0] if self.rss_by_window and self.rss_by_window[0] else 0
        base = base or self.rss_start
        return self.rss_end / base - 1 if base else 0.0

    @property
    def rss_growth_from_start(self) -> float:
        return self.rss_end / self.rss_start - 1 if self.rss_start else 0.0

    def row(self) -> dict[str, Any]:
        n = self.requests or 1
        return {
            "server": self.label,
            "generator": self.generator,
            "seconds": round(self.seconds),
            "requests/s": round(self.rate),
            "p50 ms": round(self.total.p50_ms, 2),
            "p99 ms": round(self.total.p99_ms, 1),
            "p99.9 ms": round(self.total.p999_ms, 1),
            "max ms": round(self.total.max_ms),
            "RSS start MiB": round(self.rss_start / 2**20, 1),
            "RSS end MiB": round(self.rss_end / 2**20, 1),
            "server CPU ms/req": round(self.server_cpu_s / n * 1000, 3),
            "postgres CPU ms/req": round(self.db_cpu_s / n * 1000, 3),
            "stalls >= 100 ms": len(self.stalls),
            "statuses": self.statuses,
        }


@dataclass
class SustainedResult:
    runs: list[SustainedRun]
    stored: dict[str, int]
    answered_ok: int
    notes: list[str] = field(default_factory=list)

    def ratio(self, generator: str) -> float | None:
        by = {r.label: r.rate for r in self.runs if r.generator == generator}
        if "receiver" in by and "bare Flask" in by:
            return by["receiver"] / by["bare Flask"]
        return None

    def run(self, label: str, generator: str) -> SustainedRun | None:
        return next((r for r in self.runs if (r.label, r.generator) == (label, generator)), None)


def _start(env: BenchEnv, kind: str, diag_dir: Path, server_args: list[str]) -> tuple[Process, int]:
    port = free_port()
    proc = start(
        f"s-{kind}-{port}",
        [kind, "--port", str(port), "--diag", str(diag_dir), *server_args],
        module="bench.serve",
        env=env.env(**diag.GEVENT_ENV),
        log_dir=env.logs,
        new_session=True,
    )

    def ready() -> bool:
        try:
            return http.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 404)
        except http.RequestException:
            return False

    wait_until(ready, timeout=60, what=f"{kind} server", alive=[proc])
    # One worker answered; the others may still be loading the app (their memory too).
    workers = 1 + (os.cpu_count() or 1)
    wait_until(lambda: len(procs.pids(proc)) >= workers, timeout=30, what="every worker")
    time.sleep(1.0)
    return proc, port


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _one(
    env: BenchEnv,
    kind: str,
    generator: str,
    corpus: Corpus,
    *,
    seconds: float,
    connections: int,
    client_processes: int,
    server_args: list[str],
) -> SustainedRun:
    label = "receiver" if kind == "receiver" else "bare Flask"
    diag_dir = Path(tempfile.mkdtemp(prefix=f"diag-{kind}-", dir=env.root))
    proc, port = _start(env, kind, diag_dir, server_args)
    database = database_name(env.db_url)
    try:
        rss_start = procs.rss_bytes(procs.pids(proc))
        cpu_before = procs.cpu(proc)
        backends = procs.BackendCPU(database)
        sampler = diag.PgSampler(
            _libpq(env.db_url), database, diag_dir / "pg-activity.samples", procs.pids(proc)
        )
        with sampler:
            if generator == "loadgen":
                load = run_load(
                    "127.0.0.1",
                    port,
                    corpus.requests,
                    connections=connections,
                    processes=client_processes,
                    duration=seconds,
                )
                if load.errors:
                    raise RuntimeError(f"{label}: load generator errors: {load.errors[:3]}")
                start_ns, end_ns = load.started_ns, load.started_ns + int(load.seconds * 1e9)
                found = windows(load.ends_ns, load.latencies_ns, start_ns=start_ns, end_ns=end_ns)
                total = overall(load.latencies_ns, load.seconds)
                slow = stalls(load.ends_ns, load.latencies_ns, start_ns=start_ns)
                requests, elapsed, repeated = load.requests, load.seconds, load.repeated
                statuses = {str(k): v for k, v in sorted(load.statuses.items())}
            else:
                start_ns = time.monotonic_ns()
                found, requests, elapsed, statuses, slow, total, repeated = _wrk_series(
                    port, corpus, env.root / f"replay-{kind}.txt", seconds, connections
                )
        rss_end = procs.rss_bytes(procs.pids(proc))
        server_cpu = procs.cpu(proc) - cpu_before
        db_cpu = 0.0 if kind == "bare" else backends.spent()
    finally:
        proc.stop()
    events = diag.read_worker_events(diag_dir)
    samples = sampler.samples()
    # wrk gives no per-request times: no stalls, the run's totals only.
    evidence = diag.explain(slow, start_ns, events, samples)
    memory = [(s["t"], s["rss"]) for s in samples if "rss" in s]
    rss_by_window = [
        next(
            (rss for t, rss in reversed(memory) if t <= start_ns + (w.start_s + w.seconds) * 1e9), 0
        )
        for w in found
    ]
    return SustainedRun(
        label=label,
        generator=generator,
        seconds=elapsed,
        requests=requests,
        windows=found,
        total=total,
        rss_start=rss_start,
        rss_end=rss_end,
        statuses=statuses,
        server_cpu_s=server_cpu,
        db_cpu_s=db_cpu,
        repeated=repeated,
        stalls=slow,
        evidence=evidence,
        log_lines=sampler.log_lines(),
        rss_by_window=rss_by_window,
    )


def _wrk_series(
    port: int, corpus: Corpus, replay: Path, seconds: float, connections: int
) -> tuple[list[Window], int, float, dict[str, int], list[Stall], Window, int]:
    lines = wrk_module.write_replay(corpus.requests, replay)
    runs: list[wrk_module.WrkRun] = []
    offset = 0
    while sum(r.seconds for r in runs) < seconds - 1:
        run = wrk_module.run_wrk(port, replay, connections=connections, offset=offset % lines)
        runs.append(run)
        offset += run.requests
    found, at = [], 0.0
    for run in runs:
        found.append(run.window(at))
        at += run.seconds
    requests = sum(r.requests for r in runs)
    elapsed = sum(r.seconds for r in runs)
    non2xx = sum(r.non2xx for r in runs)
    statuses = {
        "2xx": requests - non2xx,
        "other": non2xx,
        "socket errors": sum(r.socket_errors for r in runs),
    }
    # The run's own distribution is not kept by wrk across runs: the worst window stands for it.
    total = Window(
        start_s=0,
        seconds=elapsed,
        requests=requests,
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=max(r.p99_ms for r in runs),
        p999_ms=max(r.p999_ms for r in runs),
        max_ms=max(r.max_ms for r in runs),
    )
    return found, requests, elapsed, statuses, [], total, max(0, offset - lines)


def _inbox_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            "inbox rows": int(
                connection.execute(text("SELECT count(*) FROM webhook_events")).scalar() or 0
            ),
            "images": int(connection.execute(text("SELECT count(*) FROM images")).scalar() or 0),
        }


def run_sustained(
    env: BenchEnv,
    *,
    seconds: float = 60,
    connections: int = 16,
    client_processes: int = 2,
    generators: tuple[str, ...] = ("loadgen", "wrk"),
    expected_rate: float = 3_000,
    server_args: list[str] | None = None,
    kinds: tuple[str, ...] = ("bare", "receiver"),
) -> SustainedResult:
    """For each generator: the bare endpoint, then a freshly started receiver, each for
    `seconds`, the receiver on webhooks of jobs of its own (enough for `expected_rate`)."""
    server_args = server_args or []
    if "wrk" in generators and not wrk_module.available():
        generators = tuple(g for g in generators if g != "wrk")
    engine = env.fresh_database()
    runs: list[SustainedRun] = []
    try:
        corpora = {g: build_corpus(engine, int(expected_rate * seconds)) for g in generators}
        settle(engine)
        for generator in generators:
            for kind in kinds:
                runs.append(
                    _one(
                        env,
                        kind,
                        generator,
                        corpora[generator],
                        seconds=seconds,
                        connections=connections,
                        client_processes=client_processes,
                        server_args=server_args,
                    )
                )
        stored = _inbox_rows(engine)
    finally:
        engine.dispose()
    answered = sum(
        sum(v for k, v in r.statuses.items() if k in ("200", "202", "2xx"))
        for r in runs
        if r.label == "receiver"
    )
    notes = []
    if "wrk" not in generators:
        notes.append("wrk is not installed: only bench/loadgen.py was run (scripts/ensure-wrk).")
    return SustainedResult(runs=runs, stored=stored, answered_ok=answered, notes=notes)
