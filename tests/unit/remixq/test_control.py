"""`remixq resume` as a user meets it (real subprocesses, the embedded default)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def remixq(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMIXQ_DATA_DIR": str(tmp_path / "data")}
    for name in ("REMIXQ_DATABASE_URL", "REMIXQ_BROKER_URL", "RUNWARE_API_KEY"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "remixq.cli", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_resume_with_nothing_paused_says_so(tmp_path: Path) -> None:
    assert remixq(tmp_path, "db", "upgrade").returncode == 0

    done = remixq(tmp_path, "resume")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "nothing to resume: no campaign is paused"


def test_resume_of_an_unknown_campaign_is_one_line(tmp_path: Path) -> None:
    assert remixq(tmp_path, "db", "upgrade").returncode == 0

    done = remixq(tmp_path, "resume", "nope")

    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: CAMPAIGN")
    assert "nope" in done.stderr and len(done.stderr.strip().splitlines()) == 1
