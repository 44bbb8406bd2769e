"""The receiver as deployed (`remixq receiver`: gunicorn, gevent workers, PostgreSQL): a webhook
waiting for the database does not stop its worker process from serving other requests, which
holds only if psycopg waits cooperatively (it must be imported after gevent's patching); a
keep-alive connection is closed after REQUESTS_PER_CONNECTION requests."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, text

from remixq.cli.processes import free_port, http_ready, start, wait_until
from remixq.db import make_engine
from remixq.models import Job
from tests.support.factories import new_job
from tests.support.webhooks import SECRET, count, result, url, writer_held
from webhook_receiver.server import REQUESTS_PER_CONNECTION

pytestmark = pytest.mark.e2e


def waiting_for_a_row_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar()
    return bool(waiting)


@pytest.fixture
def receiver_port(pg_url: str, tmp_path: Path) -> Iterator[int]:
    """`remixq receiver` with one gevent worker, ready; its port."""
    port = free_port()
    receiver = start(
        "receiver",
        ["receiver", "--port", str(port), "--workers", "1"],
        env={
            "REMIXQ_DATABASE_URL": pg_url,
            "REMIXQ_WEBHOOK_SECRET": SECRET,
            "REMIXQ_DATA_DIR": str(tmp_path),
        },
        log_dir=tmp_path / "logs",
        new_session=True,
    )
    try:
        wait_until(http_ready(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="receiver")
        yield port
    finally:
        receiver.stop(30)


def test_a_webhook_waiting_for_the_database_does_not_block_its_worker(
    pg_url: str, receiver_port: int
) -> None:
    engine = make_engine(pg_url)
    task = new_job(engine)
    base = f"http://127.0.0.1:{receiver_port}"
    answer: dict[str, Any] = {}

    def post() -> None:
        response = requests.post(base + url(task), data=json.dumps(result(task)), timeout=30)
        answer.update(status=response.status_code, body=response.json())

    try:
        with writer_held(engine, task):
            poster = threading.Thread(target=post)
            poster.start()
            wait_until(lambda: waiting_for_a_row_lock(engine), timeout=15, what="the lock wait")
            started = time.monotonic()
            health = requests.get(base + "/healthz", timeout=10)
            assert health.status_code == 200
            assert time.monotonic() - started < 5  # served while the webhook waits
            assert poster.is_alive() and not answer
        poster.join(30)
        assert answer == {
            "status": 200,
            "body": {"status": "processed", "images_stored": 1, "duplicates": 0},
        }
        assert count(engine, Job, task_uuid=task, status="completed") == 1
    finally:
        engine.dispose()


def test_a_keep_alive_connection_is_closed_after_its_last_request(receiver_port: int) -> None:
    """Every answer but the last of a connection keeps it open; the last says so and closes it,
    so that the client connects again (and may reach another worker process)."""
    connection = http.client.HTTPConnection("127.0.0.1", receiver_port, timeout=10)
    try:
        for number in range(1, REQUESTS_PER_CONNECTION + 1):
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            assert response.status == 200 and response.read()
            if number == 1:
                first_socket = connection.sock
            last = number == REQUESTS_PER_CONNECTION
            assert (response.getheader("Connection"), response.will_close) == (
                ("close", True) if last else ("keep-alive", False)
            )
            # the same connection all along, closed after the last answer
            assert connection.sock is (None if last else first_socket)
        connection.request("GET", "/healthz")  # http.client connects again
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_the_receiver_says_where_it_listens_and_no_monkey_patch_warning(
    receiver_port: int, tmp_path: Path
) -> None:
    """The receiver's output (stderr, merged into its log): the address it serves, and none of
    gevent's MonkeyPatchWarning, which it printed for each worker when the master had imported
    ssl (through the app's provider client) before the workers patched it."""
    requests.get(f"http://127.0.0.1:{receiver_port}/readyz", timeout=10).raise_for_status()
    output = (tmp_path / "logs" / "receiver.log").read_text()
    assert f"listening on http://127.0.0.1:{receiver_port}" in output
    assert "MonkeyPatchWarning" not in output
