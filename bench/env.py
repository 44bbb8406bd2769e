"""Where the benchmarks run: their own PostgreSQL database and Redis database number (so tests
and other people's work are not disturbed), a scratch directory for logs, the environment the
started processes read, and a description of the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from remixq import migrate
from remixq.db import make_engine

PG_URL = os.environ.get(
    "REMIXQ_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/remixq_bench"
)
REDIS_URL = os.environ.get("REMIXQ_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SECRET = "remixq-bench-webhook-secret"


def database_name(url: str = PG_URL) -> str:
    return str(make_url(url).database)


@dataclass
class BenchEnv:
    """One bench run's scratch space and the environment of the processes it starts."""

    root: Path
    db_url: str = PG_URL
    broker_url: str = REDIS_URL
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def env(self, **more: str) -> dict[str, str]:
        return {
            "REMIXQ_DATA_DIR": str(self.root / "data"),
            "REMIXQ_DATABASE_URL": self.db_url,
            "REMIXQ_BROKER_URL": self.broker_url,
            "REMIXQ_WEBHOOK_SECRET": SECRET,
            "PYTHONUNBUFFERED": "1",
            **self.extra,
            **more,
        }

    def fresh_database(self) -> Engine:
        """Drop and recreate the bench database, migrate it to head, flush the bench broker."""
        migrate.recreate_database(self.db_url)
        migrate.upgrade(self.db_url)
        redis.Redis.from_url(self.broker_url).flushdb()
        return make_engine(self.db_url)


@contextmanager
def bench_env(keep: bool = False) -> Iterator[BenchEnv]:
    root = Path(tempfile.mkdtemp(prefix="remixq-bench-"))
    try:
        yield BenchEnv(root)
    finally:
        if not keep:
            subprocess.run(["rm", "-rf", str(root)], check=False)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    engine = create_engine(make_url(PG_URL).set(database="postgres"))
    try:
        with engine.connect() as connection:
            pg = str(connection.execute(text("SHOW server_version")).scalar())
            sync = str(connection.execute(text("SHOW synchronous_commit")).scalar())
            fsync = str(connection.execute(text("SHOW fsync")).scalar())
    finally:
        engine.dispose()
    redis_version = str(redis.Redis.from_url(REDIS_URL).info("server").get("redis_version", "?"))
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": f"{pg} (fsync={fsync}, synchronous_commit={sync})",
        "redis": redis_version,
    }


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
