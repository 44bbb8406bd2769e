"""The test servers and every database or Redis db a test makes on them, derived from the test
settings, so that two checkouts can test against one server side by side.

`REMIXQ_TEST_DATABASE_URL` names the suite's PostgreSQL database; scratch databases take its name
plus a suffix. `REMIXQ_TEST_REDIS_URL` names the suite's Redis db; the end-to-end broker uses the
db just below it.

Under pytest-xdist (`make test` runs the suite in parallel workers), worker `gwN` takes the
database name + `_gwN` and the Redis dbs 2N below, so that the workers never share data.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

from remixq.migrate import recreate_database as recreate_pg_database

__all__ = [
    "PG_URL",
    "REDIS_URL",
    "broker_redis_url",
    "empty_database",
    "recreate_pg_database",
    "scratch_pg_url",
]

_BASE_PG_URL = os.environ.get(
    "REMIXQ_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/remixq_test"
)
_BASE_REDIS_URL = os.environ.get("REMIXQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _xdist_worker() -> int | None:
    """This process's pytest-xdist worker number (`gw3` is 3); None when not under xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def _for_worker(pg_url: str, redis_url: str, worker: int | None) -> tuple[str, str]:
    if worker is None:
        return pg_url, redis_url
    url = make_url(pg_url)
    pg = url.set(database=f"{url.database}_gw{worker}").render_as_string(hide_password=False)
    base, _, db = redis_url.rpartition("/")
    shifted = int(db or 0) - 2 * worker
    if shifted < 1:
        raise ValueError(
            f"REMIXQ_TEST_REDIS_URL {redis_url!r} leaves no Redis db for xdist worker gw{worker}"
            " (each worker takes two dbs below it)"
        )
    return pg, f"{base}/{shifted}"


PG_URL, REDIS_URL = _for_worker(_BASE_PG_URL, _BASE_REDIS_URL, _xdist_worker())


def scratch_pg_url(suffix: str) -> str:
    """A PostgreSQL database of its own for one suite: the test database's name + `_suffix`."""
    url = make_url(PG_URL)
    return url.set(database=f"{url.database}_{suffix}").render_as_string(hide_password=False)


def broker_redis_url() -> str:
    """The Redis db the end-to-end stacks use as their broker: the one below the test db."""
    url = make_url(REDIS_URL.replace("redis://", "redis+x://", 1))
    db = int(url.database or 0)
    if db == 0:
        raise ValueError(f"REMIXQ_TEST_REDIS_URL {REDIS_URL!r} must name a db above 0")
    return REDIS_URL.rsplit("/", 1)[0] + f"/{db - 1}"


def empty_database(backend: str, folder: Path, name: str) -> str:
    """The URL of an empty database of its own on `backend` ("postgresql": the scratch database
    `name`, dropped and created again; "sqlite": `folder`/`name`.sqlite), not migrated."""
    if backend == "postgresql":
        url = scratch_pg_url(name)
        recreate_pg_database(url)
        return url
    if backend == "sqlite":
        return f"sqlite:///{folder / f'{name}.sqlite'}"
    raise ValueError(f"backend {backend!r}: postgresql or sqlite")
