"""`remixq schedule ...` as a user runs it (real subprocesses, the embedded default): bad input
refused at `add` in one readable line with nothing stored, the stored file independent of later
edits, list/show, pause/resume/remove, and `schedule run` making a campaign."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.support.cli import remixq

SPEC = """\
defaults:
  model: "ideogram:4@2"
  width: 1024
  height: 1024
  inputs: {referenceImages: ["https://assets.example.test/in.jpg"]}
matrix:
  positivePrompt: ["a tea tin, autumn", "a tea tin, winter"]
"""


def spec_file(tmp_path: Path, text: str = SPEC, name: str = "tins.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def stored(tmp_path: Path) -> int:
    """How many schedules the embedded database holds (none before it is made)."""
    path = tmp_path / "data" / "remixq.sqlite"
    if not path.exists():
        return 0
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM schedules")).scalar_one())
    finally:
        engine.dispose()


def listed(tmp_path: Path) -> list[dict[str, Any]]:
    done = remixq(tmp_path, "schedule", "list", "--json")
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--cron", "0 9 * * FUNDAY"], "cron: '0 9 * * FUNDAY' is not allowed"),
        (["--cron", "0 9 * * MON", "--tz", "Europe/Atlantis"], "timezone: 'Europe/Atlantis'"),
        (["--cron", "0 9 * * MON", "--catch-up", "sometimes"], "catch_up: 'sometimes'"),
        (["--cron", "0 9 * * MON", "--budget", "-3"], "budget_usd: '-3'"),
    ],
)
def test_bad_input_at_add_is_one_line_and_stores_nothing(
    tmp_path: Path, args: list[str], named: str
) -> None:
    path = spec_file(tmp_path)
    done = remixq(tmp_path, "schedule", "add", "weekly", "--file", str(path), *args)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and named in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert stored(tmp_path) == 0


def test_a_spec_that_does_not_validate_is_refused_naming_it(tmp_path: Path) -> None:
    path = spec_file(tmp_path, SPEC.replace("height: 1024", "height: 1024\n  numberResults: 99"))
    done = remixq(tmp_path, "schedule", "add", "weekly", "--cron", "@daily", "--file", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith(
        'error: tins.yaml: matrix {positivePrompt: "a tea tin, autumn"}: numberResults: 99 is'
        " not allowed"
    )
    assert "Traceback" not in done.stderr
    missing = remixq(tmp_path, "schedule", "add", "weekly", "--cron", "@daily", "--file", "no.csv")
    assert missing.returncode == 2
    assert (
        missing.stderr.strip() == "error: file: 'no.csv' is not allowed; an existing campaign file"
    )
    assert stored(tmp_path) == 0


def test_add_list_show_and_the_stored_file(tmp_path: Path) -> None:
    path = spec_file(tmp_path)
    done = remixq(
        tmp_path, "schedule", "add", "weekly", "--cron", "0 9 * * MON", "--tz", "Europe/Berlin",
        "--file", str(path), "--catch-up", "all", "--budget", "2.50", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout)
    assert (added["cron"], added["timezone"], added["catch_up"], added["catch_up_max"]) == (
        "0 9 * * MON",
        "Europe/Berlin",
        "all",
        10,
    )
    assert added["budget_usd"] == "2.50" and added["file"] == "tins.yaml"
    assert added["next_occurrence_at"].endswith(("T09:00:00+01:00", "T09:00:00+02:00"))
    again = remixq(tmp_path, "schedule", "add", "weekly", "--cron", "@daily", "--file", str(path))
    assert again.returncode == 2 and "error: name: 'weekly'" in again.stderr
    # Editing the file changes nothing; `schedule update --file` does.
    path.write_text(SPEC.replace('"a tea tin, winter"', '"a", "b"'))
    run = remixq(tmp_path, "schedule", "run", "weekly", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["jobs"] == 2
    assert remixq(tmp_path, "schedule", "update", "weekly", "--file", str(path)).returncode == 0
    run = remixq(tmp_path, "schedule", "run", "weekly", "--json")
    made = json.loads(run.stdout)
    assert made["jobs"] == 3 and made["campaign"].startswith("weekly@")
    status = remixq(tmp_path, "status", made["campaign"], "--json")
    assert json.loads(status.stdout)["budget_usd"] == "2.50"
    (one,) = listed(tmp_path)
    assert (one["fired"], one["skipped"]) == (2, 0)
    assert one["last_occurrence"]["campaign"] == made["campaign"]
    shown = remixq(tmp_path, "schedule", "show", "weekly")
    assert shown.returncode == 0, shown.stderr
    assert "schedule 'weekly' (active)" in shown.stdout
    assert "run now (schedule run)" in shown.stdout
    history = json.loads(remixq(tmp_path, "schedule", "show", "weekly", "--json").stdout)
    assert [o["jobs"] for o in history["history"]] == [3, 2]


def test_pause_resume_and_remove(tmp_path: Path) -> None:
    path = spec_file(tmp_path)
    assert (
        remixq(tmp_path, "schedule", "add", "d", "--cron", "@daily", "--file", str(path))
    ).returncode == 0
    paused = remixq(tmp_path, "schedule", "pause", "d")
    assert paused.returncode == 0 and "paused" in paused.stdout
    (one,) = listed(tmp_path)
    assert one["paused"] and one["next_occurrence_at"] is None
    assert "paused already" in remixq(tmp_path, "schedule", "pause", "d").stdout
    resumed = remixq(tmp_path, "schedule", "resume", "d", "--json")
    assert json.loads(resumed.stdout)["resumed"] is True
    (one,) = listed(tmp_path)
    assert not one["paused"] and one["next_occurrence_at"].endswith("T00:00:00+00:00")
    assert remixq(tmp_path, "schedule", "run", "d").returncode == 0
    removed = remixq(tmp_path, "schedule", "remove", "d")
    assert removed.returncode == 0 and "history of 1 occurrence" in removed.stdout
    assert listed(tmp_path) == []
    campaigns = json.loads(remixq(tmp_path, "campaigns", "--json").stdout)
    assert [c["name"].split("@")[0] for c in campaigns] == ["d"]  # its campaign stays
    unknown = remixq(tmp_path, "schedule", "pause", "d")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "error: NAME: 'd' is not allowed; the name of an existing schedule"
    )
