"""A running remixq: the real simulator, receiver, worker (and beat) as subprocesses, on
PostgreSQL and Redis or RabbitMQ, or on the embedded default (SQLite and the SQLite broker).

The broker of a PostgreSQL stack is Redis unless REMIXQ_TEST_BROKER=rabbitmq (`make test` runs
the end-to-end tests once more so: tests/support/rabbitmq.py); with RabbitMQ the provider
limit stays global, in the test Redis (REMIXQ_REDIS_URL).

The end-to-end tests start it as is; the chaos suite also stops, kills and restarts single
processes (each in its own process group, so a SIGKILL takes gunicorn's workers too), runs on a
private Redis it may restart, and points one process at a database it can cut off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from remixq import migrate
from remixq.cli.processes import (
    Process,
    free_port,
    http_ready,
    stable_port,
    start,
    stop_all,
    wait_until,
)
from remixq.db import make_engine
from remixq.models import Campaign, Job
from remixq.states import FINAL
from tests.support.databases import broker_redis_url, recreate_pg_database, scratch_pg_url
from tests.support.rabbitmq import amqp_broker_url, queue_counts

BROKERS = ("redis", "rabbitmq")
# The broker of the end-to-end stacks on PostgreSQL (`make test` runs them on each).
TEST_BROKER = os.environ.get("REMIXQ_TEST_BROKER", "redis")
if TEST_BROKER not in BROKERS:
    raise ValueError(f"REMIXQ_TEST_BROKER={TEST_BROKER!r} is not one of {', '.join(BROKERS)}")

__all__ = ["RedisServer", "Stack", "private_redis", "running_stack"]


@dataclass
class RedisServer:
    """A private redis-server on a free port, without persistence: a restart loses everything,
    as a broker restarted without AOF/RDB would."""

    directory: Path
    port: int = field(default_factory=stable_port)
    popen: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "redis.log").open("ab")
        self.popen = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        wait_until(self.ping, timeout=10, what=f"redis-server on {self.port}")

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(10)
        self.popen = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def private_redis(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Stack:
    env: dict[str, str]
    engine: Engine
    sim_url: str
    tmp: Path
    receiver_url: str = ""
    backend: str = "postgresql"
    timing: str = "fast"  # the chaos harness's word for the relay/reconciler settings used
    processes: dict[str, Process] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    process_env: dict[str, dict[str, str]] = field(default_factory=dict)

    # -- processes ------------------------------------------------------------------------------

    def start(self, name: str, args: Sequence[str] | None = None, **env: str) -> Process:
        """Start process `name` (again) with its command; `env` is added to the stack's and
        remembered for the next start of the same process."""
        assert name not in self.processes, f"{name} is already running"
        if args is not None:
            self.commands[name] = list(args)
        if env:
            self.process_env[name] = env
        process = start(
            name,
            self.commands[name],
            env={**self.env, **self.process_env.get(name, {})},
            log_dir=self.tmp / "logs",
            new_session=True,  # so that a stop or a kill takes the whole group
        )
        self.processes[name] = process
        return process

    def stop(self, name: str, timeout: float = 30) -> int:
        """SIGTERM (a graceful shutdown) and wait; returns the exit code."""
        return self.processes.pop(name).stop(timeout)

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children: nothing runs its shutdown code."""
        self.processes.pop(name).kill()

    def revive(self, names: Sequence[str]) -> list[str]:
        """Start again those of `names` that exited, as a restart policy would (docker-compose's
        `restart: unless-stopped`); returns the names restarted."""
        revived = []
        for name in names:
            process = self.processes.get(name)
            if process is not None and not process.alive():
                self.processes.pop(name).stop(30)  # reaps it and anything left in its group
                self.start(name)
                revived.append(name)
        return revived

    def wait_receiver(self, timeout: float = 30) -> None:
        wait_until(http_ready(f"{self.receiver_url}/healthz"), timeout=timeout, what="receiver")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if not process.alive():
                raise AssertionError(f"{name} exited: {process.log_tail()}")

    # -- the CLI and the database ---------------------------------------------------------------

    def run_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "remixq.cli", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"remixq {' '.join(args)} failed: {done.stderr}")
        return done

    def submit(self, lines: list[dict[str, Any]], name: str) -> int:
        path = self.tmp / f"{name}.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        out = json.loads(self.run_cli("submit", str(path), "--campaign", name, "--json").stdout)
        assert out["jobs"] == len(lines)
        return int(out["campaign_id"])

    def jobs(self, campaign_id: int) -> list[Job]:
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(Job)
                    .where(Job.campaign_id == campaign_id)
                    .order_by(Job.id)
                    .options(selectinload(Job.images))
                )
            )

    def wait_final(self, campaign_id: int, timeout: float = 90) -> list[Job]:
        def all_final() -> bool:
            self.check_alive()
            return all(job.status in FINAL for job in self.jobs(campaign_id))

        wait_until(all_final, timeout=timeout, interval=0.2, what="every job to be final")
        return self.jobs(campaign_id)

    def campaign(self, campaign_id: int) -> Campaign:
        with Session(self.engine) as session:
            found = session.get(Campaign, campaign_id)
            assert found is not None
            return found

    def broker_holds_nothing(self, queue: str) -> bool:
        """No message of `queue` waits on the broker or is held by a worker unacknowledged."""
        url = self.env["REMIXQ_BROKER_URL"]
        if url.startswith("amqp"):
            return queue_counts(url, queue) == (0, 0)
        broker = redis.Redis.from_url(url)
        return broker.llen(queue) == 0 and not broker.hlen("unacked")

    # -- the simulator --------------------------------------------------------------------------

    def sim_stats(self, *, tasks: bool = True) -> dict[str, Any]:
        query = "" if tasks else "?tasks=0"
        return requests.get(f"{self.sim_url}/_control/stats{query}", timeout=5).json()

    def set_faults(self, **knobs: Any) -> None:
        response = requests.put(f"{self.sim_url}/_control/faults", json=knobs, timeout=5)
        assert response.status_code == 200, response.text


STACK_PROCESSES = ("simulator", "receiver", "worker")


@contextmanager
def running_stack(
    tmp: Path,
    *,
    backend: str,
    sim_args: tuple[str, ...] = (),
    worker_args: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    broker_url: str | None = None,
    broker: str | None = None,
    database: str = "e2e",
    processes: Sequence[str] = STACK_PROCESSES,
    beat: bool = False,
    receiver_workers: int = 2,
) -> Iterator[Stack]:
    """Start the stack; `env` adds settings, `broker_url` replaces the shared Redis' db 14
    or the test process's RabbitMQ vhost (PostgreSQL only), `broker` picks which of them
    (REMIXQ_TEST_BROKER by default), `processes` picks which of simulator/receiver/worker run,
    `beat` adds a `remixq beat` (the worker embeds none on a real broker)."""
    sim_port, receiver_port = free_port(), stable_port()
    settings = {
        "REMIXQ_DATA_DIR": str(tmp / "data"),
        "REMIXQ_SIMULATOR_PORT": str(sim_port),
        "REMIXQ_RECEIVER_PORT": str(receiver_port),
        "REMIXQ_WEBHOOK_SECRET": "e2e-secret",
        "REMIXQ_SUBMIT_BACKOFF_BASE": "0.2",
        "REMIXQ_SUBMIT_BACKOFF_CAP": "2",
        **(env or {}),
    }
    if backend == "postgresql":
        db_url = scratch_pg_url(database)
        recreate_pg_database(db_url)
        broker = broker or TEST_BROKER
        if broker_url is None and broker == "rabbitmq":
            broker_url = amqp_broker_url()
        if broker_url is None:
            broker_url = broker_redis_url()
            redis.Redis.from_url(broker_url).flushdb()
        settings |= {"REMIXQ_DATABASE_URL": db_url, "REMIXQ_BROKER_URL": broker_url}
        if broker_url.startswith("amqp") and "REMIXQ_REDIS_URL" not in settings:
            limit_url = broker_redis_url()  # the provider limit's home, global as in production
            redis.Redis.from_url(limit_url).flushdb()
            settings["REMIXQ_REDIS_URL"] = limit_url
    else:
        db_url = f"sqlite:///{tmp / 'data' / 'remixq.sqlite'}"
        (tmp / "data").mkdir(parents=True, exist_ok=True)
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    stack = Stack(
        env=settings,
        engine=engine,
        sim_url=f"http://127.0.0.1:{sim_port}",
        tmp=tmp,
        receiver_url=f"http://127.0.0.1:{receiver_port}",
        backend=backend,
    )
    stack.commands = {
        "simulator": ["simulator", "--port", str(sim_port), *sim_args],
        "receiver": ["receiver", "--port", str(receiver_port), "--workers", str(receiver_workers)],
        "worker": ["worker", "--concurrency", "16", *worker_args],
        "beat": ["beat", "--loglevel", "WARNING"],
    }
    try:
        for name in (*processes, *(["beat"] if beat else [])):
            stack.start(name)
        if "simulator" in processes:
            wait_until(http_ready(f"{stack.sim_url}/_control/stats"), timeout=30, what="simulator")
        if "receiver" in processes:
            stack.wait_receiver()
        stack.check_alive()
        yield stack
    finally:
        stop_all(list(stack.processes.values()))
        engine.dispose()
