"""`.ci/run`, CI's entry point: it runs `make test`, keeps its exit status, and prints where the
browser tests' screenshots are (test-artifacts/screenshots/) at the end, even when it fails."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("status", [0, 3])
def test_ci_run_makes_test_and_lists_the_screenshots(tmp_path: Path, status: int) -> None:
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    shots = tmp_path / "test-artifacts" / "screenshots"
    shots.mkdir(parents=True)
    (shots / "campaign-phone.png").write_bytes(b"png")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    make = bin_dir / "make"  # a stand-in that notes its arguments and ends with `status`
    make.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/make-args"\nexit {status}\n')
    make.chmod(make.stat().st_mode | stat.S_IXUSR)

    done = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == status
    assert (tmp_path / "make-args").read_text().split() == ["test"]
    assert f"{shots}" in done.stdout and "campaign-phone.png" in done.stdout
    assert (shots / "campaign-phone.png").exists()
