"""Slow and abusive clients against the real `remixq receiver` (gunicorn, one gevent worker
process, PostgreSQL): hundreds of connections that send a valid webhook URL and then a byte now
and then, in the headers or in the body, do not keep a real webhook waiting; a slow connection is
closed after its deadline; a body over the size limit, chunked or not, is a 413 that a sender
writing its whole body first still reads, and nothing of it is stored
(webhook_receiver.connections, webhook_receiver.webhooks.read_body)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine

from remixq.cli.processes import free_port, http_ready, start, stop_all, wait_until
from remixq.db import make_engine
from remixq.models import WebhookEvent
from tests.support.factories import new_job
from tests.support.slow_clients import (
    Attack,
    accept_queue,
    attack,
    chunked,
    raise_open_files,
    slow_body,
    slow_headers,
    status_of,
    time_until_closed,
    with_length,
    write_then_read,
)
from tests.support.webhooks import SECRET, count, issued_url, result

pytestmark = pytest.mark.e2e

ATTACKERS = 600
CROWDED = 200  # connections per process of the receiver that must shed
LIMIT = 65536  # REMIXQ_MAX_WEBHOOK_BYTES
HEADER_TIMEOUT, BODY_TIMEOUT = 2.0, 3.0  # for the receiver that times clients out
MARGIN = 1.5  # seconds allowed past a deadline


PATIENT = {"REMIXQ_RECEIVER_HEADER_TIMEOUT": "30", "REMIXQ_RECEIVER_BODY_TIMEOUT": "30"}
RECEIVERS: dict[str, tuple[list[str], dict[str, str]]] = {
    # The default connection limit (1000 per process), deadlines (30 s) that outlast the
    # attacks: the receiver holds every slow connection and serves the rest beside them.
    "patient": ([], PATIENT),
    # Room for CROWDED connections only, deadlines that outlast the attacks: only shedding the
    # slow connections makes room for a webhook.
    "crowded": (["--connections", str(CROWDED)], PATIENT),
    # Short deadlines.
    "strict": (
        [],
        {
            "REMIXQ_RECEIVER_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
            "REMIXQ_RECEIVER_BODY_TIMEOUT": str(BODY_TIMEOUT),
        },
    ),
}


@contextmanager
def receivers(
    pg_url: str, folder: Path, specs: dict[str, tuple[list[str], dict[str, str]]]
) -> Iterator[dict[str, int]]:
    """`remixq receiver`s, one gevent worker each, started together (their logs in
    folder/logs); their ports by name."""
    raise_open_files(4 * ATTACKERS + 1024)  # before they start: they inherit it
    processes, ports = [], {}
    try:
        for name, (args, env) in specs.items():
            ports[name] = port = free_port()
            processes.append(
                start(
                    name,
                    ["receiver", "--port", str(port), "--workers", "1", *args],
                    env={
                        "REMIXQ_DATABASE_URL": pg_url,
                        "REMIXQ_WEBHOOK_SECRET": SECRET,
                        "REMIXQ_DATA_DIR": str(folder / name),
                        "REMIXQ_MAX_WEBHOOK_BYTES": str(LIMIT),
                        **env,
                    },
                    log_dir=folder / "logs",
                    new_session=True,
                )
            )
        for process, port in zip(processes, ports.values(), strict=True):
            ready = http_ready(f"http://127.0.0.1:{port}/healthz")
            wait_until(ready, timeout=30, what=process.name, alive=[process])
        yield ports
    finally:
        stop_all(processes)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("slow-clients")


@pytest.fixture(scope="module")
def ports(pg_url: str, module_tmp: Path) -> Iterator[dict[str, int]]:
    with receivers(pg_url, module_tmp, RECEIVERS) as running:
        yield running


@pytest.fixture(scope="module")
def patient(ports: dict[str, int]) -> int:
    return ports["patient"]


@pytest.fixture(scope="module")
def crowded(ports: dict[str, int]) -> int:
    return ports["crowded"]


@pytest.fixture(scope="module")
def strict(ports: dict[str, int]) -> int:
    return ports["strict"]


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def webhook_latencies(engine: Engine, port: int, rounds: int = 5) -> list[float]:
    """Seconds to answer each of `rounds` webhooks, one at a time, each on a new connection."""
    latencies = []
    for _ in range(rounds):
        task = new_job(engine)
        started = time.monotonic()
        response = requests.post(
            f"http://127.0.0.1:{port}{issued_url(task)}", json=result(task), timeout=30
        )
        latencies.append(time.monotonic() - started)
        assert response.status_code == 200, response.text
        assert response.json()["images_stored"] == 1
    return latencies


def report(what: str, latencies: list[float], running: Attack) -> None:
    print(  # noqa: T201 (the figures of docs/security.md, shown by pytest -s)
        f"\n{what}: webhook latencies {[round(x, 3) for x in latencies]} s,"
        f" {running.opened} connections opened, {running.closed_by_server} closed by the server"
    )


BODIES = {"slow bodies": lambda path: slow_body(path, 60_000), "slow headers": slow_headers}


@pytest.mark.parametrize("kind", BODIES)
def test_a_webhook_is_answered_within_a_second_beside_600_slow_connections(
    engine: Engine, patient: int, kind: str
) -> None:
    """Six hundred connections with a valid URL that send their headers, or a Content-Length
    of 60,000 and then the body, a byte every two seconds: all are accepted and held (reading a
    body is cooperative), and each webhook is still answered within 1 s."""
    opening = BODIES[kind](issued_url(new_job(engine)))
    with attack(patient, ATTACKERS, opening) as running:
        wait_until(lambda: accept_queue(patient) == 0, timeout=15, what="every connection accepted")
        latencies = webhook_latencies(engine, patient)
        closed = running.closed_by_server
    report(f"{ATTACKERS} {kind}, 1000 connections per process", latencies, running)
    assert max(latencies) < 1.0, latencies
    assert closed == 0  # all were held, none shed or timed out


@pytest.mark.parametrize("kind", BODIES)
def test_slow_connections_beyond_the_limit_are_shed_for_a_webhook(
    engine: Engine, crowded: int, kind: str, module_tmp: Path
) -> None:
    """Three times as many slow connections as the process takes: the oldest are shed, so that
    the process keeps accepting, and each webhook is answered within 1 s. Shedding is quiet: no
    traceback in the receiver's log (gevent's own shutdown() made each shed greenlet fail with
    EBADF, which gunicorn logged in full)."""
    opening = BODIES[kind](issued_url(new_job(engine)))
    with attack(crowded, ATTACKERS, opening, reconnect=False) as running:
        wait_until(
            lambda: accept_queue(crowded) == 0 and running.closed_by_server >= ATTACKERS - CROWDED,
            timeout=15,
            what="the excess shed",
        )
        latencies = webhook_latencies(engine, crowded)
    report(f"{ATTACKERS} {kind}, {CROWDED} connections per process", latencies, running)
    assert max(latencies) < 1.0, latencies
    assert "Traceback" not in (module_tmp / "logs" / "crowded.log").read_text()


def test_a_slow_header_is_closed_after_the_header_timeout(engine: Engine, strict: int) -> None:
    path = issued_url(new_job(engine))
    closed = time_until_closed(strict, slow_headers(path), trickle=0.5, timeout=30)
    assert HEADER_TIMEOUT - 0.1 <= closed.after <= HEADER_TIMEOUT + MARGIN
    assert closed.answer == b""  # no request, no answer (as nginx)


def test_a_slow_body_is_answered_408_after_the_body_timeout(engine: Engine, strict: int) -> None:
    task = new_job(engine)
    closed = time_until_closed(strict, slow_body(issued_url(task), 1000), trickle=0.5, timeout=30)
    assert BODY_TIMEOUT - 0.1 <= closed.after <= BODY_TIMEOUT + MARGIN
    assert status_of(closed.answer) == 408 and b"Connection: close" in closed.answer
    assert count(engine, WebhookEvent, task_uuid=task) == 0


def test_a_connection_idle_before_its_headers_is_closed(strict: int) -> None:
    closed = time_until_closed(strict, b"", trickle=60, timeout=30)
    assert closed.after <= HEADER_TIMEOUT + MARGIN


@pytest.mark.parametrize("framing", [chunked, with_length])
def test_an_oversized_body_written_whole_is_answered_413_and_not_stored(
    engine: Engine, strict: int, framing: Callable[[str, bytes], bytes]
) -> None:
    """A body of sixteen times the limit, written whole before reading: the answer is
    a 413 (not a reset), and nothing is stored."""
    task = new_job(engine)
    body = json.dumps({**result(task), "padding": "x" * (16 * LIMIT)}).encode()
    answer = write_then_read(strict, framing(issued_url(task), body))
    assert status_of(answer) == 413, answer[:300]
    assert b'"error":"request_entity_too_large"' in answer
    assert count(engine, WebhookEvent, task_uuid=task) == 0


def test_a_chunked_body_within_the_limit_is_stored(engine: Engine, strict: int) -> None:
    task = new_job(engine)
    body = json.dumps(result(task)).encode()
    answer = write_then_read(strict, chunked(issued_url(task), body, chunk=50))
    assert status_of(answer) == 200, answer[:300]
    assert count(engine, WebhookEvent, task_uuid=task, status="processed") == 1
