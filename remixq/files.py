"""The embedded default's files, readable by their owner only.

The SQLite database holds every job and webhook body, the broker's database every message, and
the data folder the webhook secret: anyone who can read them can forge webhooks or read the
ledger. The folder is created 0700 and the database files 0600 (as the secret file already is);
an existing folder or file that is wider and ours is tightened when a process opens it, so an
install made by an earlier version is fixed by its next start. A file someone else owns is left
alone (a shared install its owner chose).

SQLite creates a database's -wal, -shm and -journal files with the database file's mode, so a
database created here private keeps them private; created empty, the file is a valid database.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) owner-only, or tighten it if it is ours and wider."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    tighten(path, PRIVATE_DIR)


def private_file(path: Path) -> None:
    """Create `path` empty and owner-only if missing, or tighten it if it is ours and wider."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE))
    tighten(path, PRIVATE_FILE)


def private_sqlite(url: str) -> None:
    """For a SQLite URL naming a file (`sqlite:///...`, or a broker's `sqla+sqlite:///...`):
    its database file owner-only, and its companions tightened; other URLs are left alone."""
    for prefix in ("sqla+", "sqlalchemy+"):
        url = url.removeprefix(prefix)
    if not url.startswith("sqlite"):
        return
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite's own error ("unable to open database file") says it better
    private_file(path)
    for suffix in _SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            tighten(companion, PRIVATE_FILE)


def tighten(path: Path, mode: int = PRIVATE_FILE) -> None:
    """Take from `path` the permission bits beyond `mode`, if it is ours."""
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & ~mode:
        path.chmod(stat.S_IMODE(info.st_mode) & mode)
