"""`remixq resume` as a user meets it (real subprocesses, the embedded default)."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import remixq


def test_resume_with_nothing_paused_says_so(tmp_path: Path) -> None:
    assert remixq(tmp_path, "db", "upgrade").returncode == 0

    done = remixq(tmp_path, "resume")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "nothing to resume: no campaign is paused by the account's refusal"
        " (name a campaign paused on request)"
    )


def test_resume_of_an_unknown_campaign_is_one_line(tmp_path: Path) -> None:
    assert remixq(tmp_path, "db", "upgrade").returncode == 0

    done = remixq(tmp_path, "resume", "nope")

    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: CAMPAIGN")
    assert "nope" in done.stderr and len(done.stderr.strip().splitlines()) == 1
