"""The inbox's prune under beat (`worker.periodic.prune_inbox`): scheduled hourly, it deletes
what no replay needs once older than REMIXQ_INBOX_RETENTION, and keeps orphans."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from tests.support.webhooks import aged_inbox_rows, surviving
from tests.support.worker import worker_runtime, worker_settings
from worker.app import create_celery
from worker.names import INBOX_PRUNE_TASK, PERIODIC_QUEUE
from worker.periodic import prune_inbox

WEEK = 7 * 86400.0


def test_the_periodic_prune_keeps_what_must_be_kept(engine: Engine, tmp_path: Path) -> None:
    ids = aged_inbox_rows(
        engine,
        {status: [30.0, 6.0] for status in ("processed", "invalid", "rejected", "orphan")},
    )
    settings = worker_settings(engine, data_dir=tmp_path, inbox_retention=WEEK)
    with worker_runtime(settings) as (runtime, _):
        assert prune_inbox(runtime) >= 3
        assert surviving(engine, ids) == {
            "processed": 1,
            "invalid": 1,
            "rejected": 1,
            "orphan": 2,
        }
        assert prune_inbox(runtime) == 0  # nothing left past the retention


def test_beat_prunes_hourly_unless_told_not(engine: Engine, tmp_path: Path) -> None:
    settings = worker_settings(engine, data_dir=tmp_path)
    entry = create_celery(settings).conf.beat_schedule["inbox-prune"]
    assert entry == {
        "task": INBOX_PRUNE_TASK,
        "schedule": 3600.0,
        "options": {"expires": 3600.0, "queue": PERIODIC_QUEUE},
    }
    off = worker_settings(engine, data_dir=tmp_path, inbox_prune_interval=0)
    assert "inbox-prune" not in create_celery(off).conf.beat_schedule
