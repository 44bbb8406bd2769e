"""Pruning the webhook inbox (both backends, and `remixq inbox prune` on the embedded default):
what no replay needs goes once older than the retention; orphans and recent rows stay."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from remixq import migrate
from remixq.db import make_engine, make_sessionmaker
from remixq.inbox import prune
from tests.support.cli import remixq
from tests.support.webhooks import aged_inbox_rows, surviving

# Days ago each row was received: two older than a week, one younger.
AGES = {status: [30.0, 8.0, 1.0] for status in ("processed", "invalid", "rejected", "orphan")}


def test_prune_deletes_what_no_replay_needs(engine: Engine) -> None:
    ids = aged_inbox_rows(engine, AGES)
    pruned = prune(make_sessionmaker(engine), older_than=timedelta(days=7), batch=2)
    assert pruned.deleted >= 6  # three statuses x two old rows, in batches of two
    assert surviving(engine, ids) == {"processed": 1, "invalid": 1, "rejected": 1, "orphan": 3}


def test_a_dry_run_counts_and_deletes_nothing(engine: Engine) -> None:
    ids = aged_inbox_rows(engine, AGES)
    pruned = prune(make_sessionmaker(engine), older_than=timedelta(days=7), dry_run=True)
    assert pruned.deleted == 0
    assert all(pruned.found.get(status, 0) >= 2 for status in ("processed", "invalid", "rejected"))
    assert "orphan" not in pruned.found
    assert surviving(engine, ids) == dict.fromkeys(AGES, 3)
    prune(make_sessionmaker(engine), older_than=timedelta(days=7))  # leave none to others


def test_an_orphan_is_kept_whatever_its_age(engine: Engine) -> None:
    ids = aged_inbox_rows(engine, {"orphan": [3650.0]})
    prune(make_sessionmaker(engine), older_than=timedelta(seconds=1))
    assert surviving(engine, ids) == {"orphan": 1}


@pytest.fixture
def embedded(tmp_path: Path) -> Engine:
    """The embedded default's database of a `remixq` run in `tmp_path`, migrated."""
    (tmp_path / "data").mkdir()
    url = f"sqlite:///{tmp_path / 'data' / 'remixq.sqlite'}"
    migrate.upgrade(url)
    return make_engine(url)


def test_the_command_prunes_after_the_retention(embedded: Engine, tmp_path: Path) -> None:
    ids = aged_inbox_rows(embedded, AGES)
    dry = remixq(tmp_path, "inbox", "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete inbox rows received before" in dry.stdout
    assert "2 invalid, 2 processed, 2 rejected" in dry.stdout
    assert surviving(embedded, ids) == dict.fromkeys(AGES, 3)

    done = remixq(tmp_path, "inbox", "prune", "--json", env={"REMIXQ_INBOX_RETENTION": "864000"})
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)  # ten days: only the 30-day-old rows go
    assert (answer["deleted"], answer["dry_run"]) == (3, False)
    assert surviving(embedded, ids) == {"processed": 2, "invalid": 2, "rejected": 2, "orphan": 3}

    hours = remixq(tmp_path, "inbox", "prune", "--older-than", "12h")
    assert hours.returncode == 0, hours.stderr
    assert hours.stdout.startswith("deleted 6 inbox rows received before")
    assert surviving(embedded, ids) == {"processed": 0, "invalid": 0, "rejected": 0, "orphan": 3}


@pytest.mark.parametrize("value", ["7 days", "-1d", "0", "d", "1y"])
def test_a_bad_duration_is_one_line(tmp_path: Path, value: str) -> None:
    done = remixq(tmp_path, "inbox", "prune", "--older-than", value)
    assert done.returncode == 2
    allowed = "a positive duration: a number with a unit s, m, h, d or w (e.g. 7d, 12h)"
    assert done.stderr.strip().splitlines() == [
        f"error: --older-than: {value!r} is not allowed; {allowed}"
    ]
