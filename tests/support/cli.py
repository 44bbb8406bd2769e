"""The `remixq` command as a user runs it: a real subprocess on the embedded default, its data
in a folder of the test's own, with none of the caller's server settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Settings of the machine running the tests that would point the command elsewhere.
_UNSET = ("REMIXQ_DATABASE_URL", "REMIXQ_BROKER_URL", "RUNWARE_API_KEY", "COLUMNS")


def _environ(tmp_path: Path, env: dict[str, str] | None) -> dict[str, str]:
    environ = {**os.environ, "REMIXQ_DATA_DIR": str(tmp_path / "data")}
    for name in _UNSET:
        environ.pop(name, None)
    environ.update(env or {})
    return environ


def remixq_process(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`remixq ARGS` started as `remixq` does, its output read as it comes (line-buffered
    pipes): for commands that follow something, such as `remixq watch`."""
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "remixq.cli", *args],
        env=_environ(tmp_path, env),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def remixq(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `remixq ARGS` in `tmp_path` (data in `tmp_path/data`), with `env` added."""
    return subprocess.run(
        [sys.executable, "-m", "remixq.cli", *args],
        env=_environ(tmp_path, env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
