"""`remixq demo` on the embedded default: real subprocesses, nothing to install, under a minute."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_demo_finishes_green_within_a_minute(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMIXQ_", "RUNWARE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "remixq.cli", "demo", "--timeout", "50"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = re.search(
        r"(\d+) jobs \((\d+) completed\); (\d+) images; total cost ([\d.]+) USD", done.stdout
    )
    assert summary, done.stdout
    jobs, completed, images, cost = summary.groups()
    assert jobs == completed == "10" and int(images) == 18 and float(cost) > 0
    assert (tmp_path / "remixq-data" / "remixq.sqlite").exists()
