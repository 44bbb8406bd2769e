"""Many concurrent clients: every task is accepted exactly once and counted.

How fast the simulator goes is measured by the benchmarks (bench/, docs/benchmarks.md), not
timed here: a test asserts behaviour, never speed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.support.simulator import AUTH, task

TASKS = 400
CLIENTS = 8


def test_concurrent_clients_each_task_accepted_once(make_live: Any) -> None:
    live = make_live()
    url = f"{live.url}/v1"

    def worker(count: int) -> list[str]:
        accepted = []
        with requests.Session() as session:
            for _ in range(count):
                body = task(deliveryMethod="async")
                answer = session.post(url, json=[body], headers=AUTH, timeout=10)
                if answer.status_code == 200:
                    accepted.append(answer.json()["data"][0]["taskUUID"])
        return accepted

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        accepted = [
            uuid for batch in pool.map(worker, [TASKS // CLIENTS] * CLIENTS) for uuid in batch
        ]
    assert len(accepted) == len(set(accepted)) == TASKS
    stats = requests.get(f"{live.url}/_control/stats", timeout=5).json()
    assert stats["tasks_accepted"] == TASKS
    assert all(stats["tasks"][uuid]["accepted"] == 1 for uuid in accepted)
