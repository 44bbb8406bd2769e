"""The relay, the reconciler and the schedules' rounds only run if something schedules them:
`remixq beat` on a real broker, the worker itself on the embedded default. Without either, a
dropped webhook, a lost message or a schedule's occurrence would wait forever."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from celery import Celery
from click.testing import CliRunner

from remixq.cli import cli
from remixq.cli.processes import start, wait_until
from tests.support.stack import private_redis
from worker.names import PERIODIC_QUEUE, RECONCILE_TASK, RELAY_TASK, SCHEDULES_TASK


@pytest.mark.parametrize("broker", [None, "redis://127.0.0.1:1/0"])
def test_worker_embeds_beat_only_on_the_embedded_default(
    broker: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv: list[str] = []
    monkeypatch.setattr(Celery, "worker_main", lambda _app, args: argv.extend(args))
    monkeypatch.setenv("REMIXQ_DATA_DIR", str(tmp_path))
    if broker:
        monkeypatch.setenv("REMIXQ_BROKER_URL", broker)
    else:
        monkeypatch.delenv("REMIXQ_BROKER_URL", raising=False)
    done = CliRunner().invoke(cli, ["worker", "--concurrency", "2"])
    assert done.exit_code == 0, done.output
    embedded = "--beat" in argv
    assert embedded is (broker is None)
    assert argv[-2:] == ["--concurrency", "2"]  # the caller's options come last and win


@pytest.mark.e2e
def test_beat_publishes_the_relay_and_the_reconciler(tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as server:
        env = {
            "REMIXQ_DATA_DIR": str(tmp_path / "data"),
            "REMIXQ_BROKER_URL": server.url(0),
            "REMIXQ_RELAY_INTERVAL": "0.2",
            "REMIXQ_RECONCILE_INTERVAL": "0.2",
            "REMIXQ_SCHEDULE_INTERVAL": "0.2",
        }
        beat = start("beat", ["beat"], env=env, log_dir=tmp_path / "logs", new_session=True)
        queue = redis.Redis(port=server.port)

        def scheduled() -> set[str]:
            names = set()
            for raw in queue.lrange(PERIODIC_QUEUE, 0, -1):
                names.add(json.loads(raw)["headers"]["task"])
            return names

        try:
            wait_until(
                lambda: {RELAY_TASK, RECONCILE_TASK, SCHEDULES_TASK} <= scheduled(),
                timeout=30,
                what="the relay, the reconciler and the schedules' round on the broker",
            )
        finally:
            assert beat.stop(30) == 0
