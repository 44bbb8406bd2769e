"""The reverse proxy as shipped (deploy/nginx/remixq.conf, nginx from Debian's packages) in front
of a real `remixq receiver`: a webhook goes through and is stored, its token stays out of
nginx's log, the slow-client attacks are held by nginx without reaching the receiver, a body over
the limit is refused with a 413, and requests in progress per address are limited."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine

from remixq.cli.processes import free_port, http_ready, wait_until
from remixq.db import make_engine
from remixq.models import WebhookEvent
from remixq.security import webhook_token
from tests.e2e.test_slow_clients import ATTACKERS, LIMIT, receivers, report, webhook_latencies
from tests.support.factories import new_job
from tests.support.proxy import Nginx, nginx
from tests.support.slow_clients import (
    attack,
    chunked,
    slow_body,
    slow_headers,
    status_of,
    with_length,
    write_then_read,
)
from tests.support.webhooks import SECRET, count, issued_url, result

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def upstream(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`remixq receiver`, one gevent worker, its default limits."""
    with receivers(pg_url, tmp_path_factory.mktemp("proxied"), {"proxied": ([], {})}) as ports:
        yield ports["proxied"]


def proxied(folder: Path, upstream: int, per_ip: int) -> tuple[int, AbstractContextManager[Nginx]]:
    port = free_port()
    values = {
        "REMIXQ_PROXY_PORT": f"127.0.0.1:{port}",
        "REMIXQ_RECEIVER_UPSTREAM": f"127.0.0.1:{upstream}",
        "REMIXQ_MAX_WEBHOOK_BYTES": str(LIMIT),
        "REMIXQ_PROXY_CONNECTIONS_PER_IP": str(per_ip),
    }
    return port, nginx(folder, values)


@pytest.fixture(scope="module")
def proxy(upstream: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """nginx with room for the attacks from one address (the tests have only 127.0.0.1)."""
    port, running = proxied(tmp_path_factory.mktemp("nginx"), upstream, per_ip=2 * ATTACKERS)
    with running:
        wait_until(http_ready(f"http://127.0.0.1:{port}/healthz"), timeout=15, what="nginx")
        yield port


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def test_a_webhook_through_the_proxy_is_stored_and_its_token_not_logged(
    engine: Engine, proxy: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    task = new_job(engine)
    response = requests.post(
        f"http://127.0.0.1:{proxy}{issued_url(task)}", json=result(task), timeout=10
    )
    assert response.status_code == 200 and response.json()["images_stored"] == 1
    assert count(engine, WebhookEvent, task_uuid=task, status="processed") == 1
    token = webhook_token(SECRET.encode(), task)
    base = tmp_path_factory.getbasetemp()
    logs = [path.read_text() for path in base.glob("nginx*/*.log")]
    assert any(f"/webhooks/runware/{task}/[redacted]" in log for log in logs)
    assert not any(token in log for log in logs)


@pytest.mark.parametrize("kind", ["slow bodies", "slow headers"])
def test_slow_clients_are_held_by_the_proxy(engine: Engine, proxy: int, kind: str) -> None:
    """Six hundred slow connections through nginx: it buffers them, the receiver never sees
    them, and each webhook is answered within 1 s."""
    path = issued_url(new_job(engine))
    opening = slow_body(path, 60_000) if kind == "slow bodies" else slow_headers(path)
    with attack(proxy, ATTACKERS, opening) as running:
        wait_until(lambda: running.opened >= ATTACKERS, timeout=15, what="the attack")
        latencies = webhook_latencies(engine, proxy)
        closed = running.closed_by_server
    report(f"{ATTACKERS} {kind} through nginx", latencies, running)
    assert max(latencies) < 1.0, latencies
    assert closed == 0


@pytest.mark.parametrize("framing", [chunked, with_length])
def test_a_body_over_the_limit_is_refused_by_the_proxy(
    engine: Engine, proxy: int, framing: Callable[[str, bytes], bytes]
) -> None:
    task = new_job(engine)
    body = json.dumps({**result(task), "padding": "x" * (16 * LIMIT)}).encode()
    answer = write_then_read(proxy, framing(issued_url(task), body))
    assert status_of(answer) == 413, answer[:300]
    assert count(engine, WebhookEvent, task_uuid=task) == 0


def test_requests_in_progress_per_address_are_limited(
    engine: Engine, upstream: int, tmp_path: Path
) -> None:
    """Beyond REMIXQ_PROXY_CONNECTIONS_PER_IP requests in progress from one address, nginx
    answers 503 at once."""
    port, running = proxied(tmp_path / "nginx-limited", upstream, per_ip=20)
    with running:
        wait_until(http_ready(f"http://127.0.0.1:{port}/healthz"), timeout=15, what="nginx")
        path = issued_url(new_job(engine))
        with attack(port, 20, slow_body(path, 60_000), reconnect=False) as slow:
            wait_until(lambda: slow.opened >= 20, timeout=10, what="the slow bodies")
            started = time.monotonic()
            task = new_job(engine)
            response = requests.post(
                f"http://127.0.0.1:{port}{issued_url(task)}", json=result(task), timeout=10
            )
            assert response.status_code == 503 and time.monotonic() - started < 1
        wait_until(
            lambda: requests.post(
                f"http://127.0.0.1:{port}{issued_url(task)}", json=result(task), timeout=10
            ).status_code
            == 200,
            timeout=10,
            what="room again once the slow ones are gone",
        )
