"""Webhook retries: documented backoff (250 ms doubling, capped at 8 s, jittered), giving up."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from simulator.config import FaultKnobs
from simulator.faults import Faults
from tests.support.simulator import AUTH, MakeClient, Receiver, simulator_of, task, wait_for


def test_default_schedule_is_the_documented_one() -> None:
    knobs = FaultKnobs()
    assert (knobs.webhook_backoff_base_ms, knobs.webhook_backoff_cap_ms) == (250.0, 8000.0)
    assert knobs.webhook_retries == 8 and knobs.webhook_timeout_s == 5.0
    exact = knobs.patched({"webhook_backoff_jitter": 0.0})
    faults = Faults(exact, seed=1)
    delays = [faults.backoff_s(exact, retry) for retry in range(1, 9)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_stays_within_bounds_and_under_the_cap() -> None:
    knobs = FaultKnobs()
    faults = Faults(knobs, seed=2)
    for retry in range(1, 10):
        nominal = min(8.0, 0.25 * 2 ** (retry - 1))
        for _ in range(50):
            delay = faults.backoff_s(knobs, retry)
            assert delay <= 8.0 and nominal * 0.8 - 1e-9 <= delay <= nominal * 1.2 + 1e-9


def test_failing_receiver_is_retried_with_growing_delays(client: Any, receiver: Receiver) -> None:
    receiver.fail_next([500, 503])  # then 200
    body = task(deliveryMethod="async", webhookURL=receiver.url())
    client.post("/v1", json=[body], headers=AUTH)
    first, second, third = receiver.wait(3, timeout=3)
    gap1, gap2 = second.at - first.at, third.at - second.at
    assert 0.2 <= gap1 <= 0.45, gap1  # 250 ms ± 20 % jitter, plus scheduling slack
    assert 0.4 <= gap2 <= 0.75, gap2  # 500 ms ± 20 %
    assert gap2 > gap1
    assert first.body == second.body == third.body  # a retry redelivers the same body
    stats = wait_for(
        lambda: (s := simulator_of(client).stats.snapshot())["webhooks"]["succeeded"] and s
    )
    assert stats["webhooks"] == {
        "attempted": 3,
        "succeeded": 1,
        "failed": 2,
        "retried": 2,
        "gave_up": 0,
        "dropped": 0,
        "duplicated": 0,
    }
    assert stats["tasks"][body["taskUUID"]]["webhooks_delivered"] == 1


def test_gives_up_after_the_configured_retries(make_client: MakeClient, receiver: Receiver) -> None:
    client = make_client(webhook_retries=1)
    receiver.fail_next([500] * 10)
    client.post("/v1", json=[task(deliveryMethod="async", webhookURL=receiver.url())], headers=AUTH)
    stats = wait_for(
        lambda: (s := simulator_of(client).stats.snapshot())["webhooks"]["gave_up"] and s
    )
    assert stats["webhooks"]["attempted"] == 2 and stats["webhooks"]["retried"] == 1
    assert len(receiver.requests()) == 2


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_receiver_is_retried(make_client: MakeClient, closed_port: int) -> None:
    client = make_client(webhook_retries=2, webhook_backoff_base_ms=10)
    url = f"http://127.0.0.1:{closed_port}/hook"
    client.post("/v1", json=[task(deliveryMethod="async", webhookURL=url)], headers=AUTH)
    stats = wait_for(
        lambda: (s := simulator_of(client).stats.snapshot())["webhooks"]["gave_up"] and s
    )
    assert stats["webhooks"]["attempted"] == 3 and stats["webhooks"]["failed"] == 3


def test_slow_receiver_times_out_and_is_retried(
    make_client: MakeClient, receiver: Receiver
) -> None:
    # A 2xx that comes after the per-attempt timeout does not count as delivered.
    client = make_client(webhook_timeout_s=0.1, webhook_retries=1, webhook_backoff_base_ms=10)
    receiver.delay_s = 0.3
    client.post("/v1", json=[task(deliveryMethod="async", webhookURL=receiver.url())], headers=AUTH)
    stats = wait_for(
        lambda: (s := simulator_of(client).stats.snapshot())["webhooks"]["gave_up"] and s, timeout=3
    )
    assert stats["webhooks"]["attempted"] == 2 and stats["webhooks"]["succeeded"] == 0
