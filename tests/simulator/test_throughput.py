"""The simulator must not be the bottleneck: hundreds of tasks per second at zero latency."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from .helpers import AUTH, task

TASKS = 400
MINIMUM_PER_SECOND = 100  # far below what it does, so a busy CI box does not flake


def test_live_server_sustains_hundreds_of_tasks_per_second(make_live: Any) -> None:
    live = make_live()
    url = f"{live.url}/v1"

    def worker(count: int) -> int:
        with requests.Session() as session:
            ok = 0
            for _ in range(count):
                body = task(deliveryMethod="async")
                ok += session.post(url, json=[body], headers=AUTH, timeout=5).status_code == 200
            return ok

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = sum(pool.map(worker, [TASKS // 8] * 8))
    rate = TASKS / (time.monotonic() - started)
    assert accepted == TASKS
    assert rate >= MINIMUM_PER_SECOND, f"{rate:.0f} tasks/s"
