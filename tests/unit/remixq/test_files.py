"""The embedded default's files are readable by their owner only: the data folder 0700, the
SQLite databases (and their -wal/-shm files) and the webhook secret 0600, whether created now
or left wider by an earlier version, under a umask that would make them world-readable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from remixq.config import load_settings
from remixq.db import make_engine
from remixq.files import private_sqlite

OPEN_UMASK = 0o022  # the usual default: files 0644, folders 0755


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(OPEN_UMASK)
    yield
    os.umask(previous)


def test_db_upgrade_makes_the_folder_and_the_database_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "remixq-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMIXQ_", "RUNWARE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "remixq.cli", "db", "upgrade"],
        env={**env, "REMIXQ_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=120,
        umask=OPEN_UMASK,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert mode(data) == 0o700
    files = sorted(p.name for p in data.iterdir())
    assert "remixq.sqlite" in files
    for name in files:
        assert mode(data / name) == 0o600, name


def test_an_existing_wider_folder_and_secret_are_tightened(
    tmp_path: Path, open_umask: None
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    secret = data / "webhook-secret"
    secret.write_text("an-old-secret-of-an-earlier-version")
    secret.chmod(0o644)
    settings = load_settings(data_dir=data, webhook_secret=None, production=False)
    settings.ensure_data_dir()
    assert mode(data) == 0o700
    assert settings.secret() == b"an-old-secret-of-an-earlier-version"
    assert mode(secret) == 0o600


def test_a_narrower_folder_is_left_as_it_is(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o500)
    load_settings(data_dir=data).ensure_data_dir()
    assert mode(data) == 0o500


def test_a_sqlite_database_and_its_wal_are_created_owner_only(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "remixq.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:  # WAL mode: the -wal and -shm files appear
            connection.execute(text("CREATE TABLE t (x TEXT)"))
            connection.execute(text("INSERT INTO t VALUES ('token')"))
        companions = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
        assert all(p.exists() for p in companions)
        assert [mode(p) for p in (path, *companions)] == [0o600] * 3
    finally:
        engine.dispose()


def test_an_existing_wider_database_is_tightened_when_opened(
    tmp_path: Path, open_umask: None
) -> None:
    path, wal = tmp_path / "broker.sqlite", tmp_path / "broker.sqlite-wal"
    path.touch(mode=0o644)
    wal.touch(mode=0o664)
    private_sqlite(f"sqla+sqlite:///{path}")  # the embedded broker's URL
    assert (mode(path), mode(wal)) == (0o600, 0o600)


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "postgresql+psycopg://u@h/db", "redis://h/0"]
)
def test_other_urls_are_left_alone(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may appear here
    private_sqlite(url)
    assert list(tmp_path.iterdir()) == []
