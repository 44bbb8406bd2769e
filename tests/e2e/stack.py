"""A running remixq: the real simulator, receiver and worker as subprocesses, on PostgreSQL and
Redis or on the embedded default (SQLite and the SQLite broker)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from remixq import migrate
from remixq.cli.processes import Process, free_port, http_ready, start, wait_until
from remixq.db import make_engine, make_sessionmaker
from remixq.models import Campaign, Job
from remixq.states import FINAL
from tests.conftest import PG_URL, REDIS_URL, recreate_pg_database


@dataclass
class Stack:
    env: dict[str, str]
    engine: Engine
    sim_url: str
    tmp: Path
    processes: dict[str, Process] = field(default_factory=dict)

    def run_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "remixq.cli", *args],
            env=self._full_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"remixq {' '.join(args)} failed: {done.stderr}")
        return done

    def _full_env(self) -> dict[str, str]:
        import os

        return {**os.environ, **self.env}

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

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if not process.alive():
                raise AssertionError(f"{name} exited: {process.log_tail()}")

    def sim_stats(self) -> dict[str, Any]:
        return requests.get(f"{self.sim_url}/_control/stats", timeout=5).json()

    def set_faults(self, **knobs: Any) -> None:
        response = requests.put(f"{self.sim_url}/_control/faults", json=knobs, timeout=5)
        assert response.status_code == 200, response.text

    def campaign(self, campaign_id: int) -> Campaign:
        with Session(self.engine) as session:
            found = session.get(Campaign, campaign_id)
            assert found is not None
            return found


@contextmanager
def running_stack(
    tmp: Path, *, backend: str, sim_args: tuple[str, ...] = (), worker_args: tuple[str, ...] = ()
) -> Iterator[Stack]:
    sim_port, receiver_port = free_port(), free_port()
    env = {
        "REMIXQ_DATA_DIR": str(tmp / "data"),
        "REMIXQ_SIMULATOR_PORT": str(sim_port),
        "REMIXQ_RECEIVER_PORT": str(receiver_port),
        "REMIXQ_WEBHOOK_SECRET": "e2e-secret",
        "REMIXQ_SUBMIT_BACKOFF_BASE": "0.2",
        "REMIXQ_SUBMIT_BACKOFF_CAP": "2",
    }
    if backend == "postgresql":
        db_url = PG_URL.rsplit("/", 1)[0] + "/remixq_e2e"
        recreate_pg_database(db_url)
        broker = REDIS_URL.rsplit("/", 1)[0] + "/14"
        redis.Redis.from_url(broker).flushdb()
        env |= {"REMIXQ_DATABASE_URL": db_url, "REMIXQ_BROKER_URL": broker}
    else:
        db_url = f"sqlite:///{tmp / 'data' / 'remixq.sqlite'}"
        (tmp / "data").mkdir(parents=True, exist_ok=True)
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    make_sessionmaker(engine)
    logs = tmp / "logs"
    stack = Stack(env=env, engine=engine, sim_url=f"http://127.0.0.1:{sim_port}", tmp=tmp)
    try:
        stack.processes["simulator"] = start(
            "simulator", ["simulator", "--port", str(sim_port), *sim_args], env=env, log_dir=logs
        )
        stack.processes["receiver"] = start(
            "receiver",
            ["receiver", "--port", str(receiver_port), "--workers", "2"],
            env=env,
            log_dir=logs,
        )
        stack.processes["worker"] = start(
            "worker", ["worker", "--concurrency", "16", *worker_args], env=env, log_dir=logs
        )
        wait_until(http_ready(f"{stack.sim_url}/_control/stats"), timeout=30, what="simulator")
        wait_until(
            http_ready(f"http://127.0.0.1:{receiver_port}/healthz"), timeout=30, what="receiver"
        )
        stack.check_alive()
        yield stack
    finally:
        for process in stack.processes.values():
            process.stop()
        engine.dispose()
