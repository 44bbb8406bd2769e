"""The global provider limit, against a real Redis and in-process: rate, concurrency, pause."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable

import pytest
import redis

from tests.support.databases import REDIS_URL
from worker.ratelimit import PACE_MARGIN, LimitTimeout, LocalLimit, ProviderLimit, RedisLimit

LEASE = 60.0  # longer than any call of these tests


def redis_limit(rate: float, max_in_flight: int) -> RedisLimit:
    client = redis.Redis.from_url(REDIS_URL)
    return RedisLimit(
        client,
        rate=rate,
        max_in_flight=max_in_flight,
        lease_seconds=LEASE,
        prefix=f"remixq:test:{uuid.uuid4().hex}",
    )


MakeLimit = Callable[..., ProviderLimit]


@pytest.fixture(params=["redis", "local"])
def make_limit(request: pytest.FixtureRequest) -> MakeLimit:
    def factory(rate: float, max_in_flight: int) -> ProviderLimit:
        if request.param == "redis":
            return redis_limit(rate, max_in_flight)
        return LocalLimit(rate=rate, max_in_flight=max_in_flight)

    return factory


def test_rate_is_bounded_by_the_rate_times_elapsed(make_limit: MakeLimit) -> None:
    limit = make_limit(rate=20, max_in_flight=100)
    start = time.monotonic()
    granted = 0
    while time.monotonic() - start < 1.0:
        with limit.permit(timeout=5):
            granted += 1
    elapsed = time.monotonic() - start
    assert granted <= 20 * elapsed + 1
    # Calls do get through at the pace (half of it at least: a loaded host oversleeps).
    assert granted >= 20 * elapsed / (1 + PACE_MARGIN) / 2


def test_no_second_ever_holds_more_calls_than_the_rate(make_limit: MakeLimit) -> None:
    """Calls as fast as granted: a token bucket let twice the rate through within one second
    (the full bucket, then its refill); the pace never more than the rate."""
    limit = make_limit(rate=10, max_in_flight=100)
    granted: list[float] = []
    start = time.monotonic()
    while time.monotonic() - start < 2.5:
        with limit.permit(timeout=5):
            granted.append(time.monotonic())
    worst = max(sum(1 for t in granted if s <= t < s + 1.0) for s in granted)
    assert worst <= 10
    assert len(granted) >= 2.5 * 10 / (1 + PACE_MARGIN) / 2  # the pace, a loaded host's half


def test_the_sends_keep_the_pace_whenever_the_permits_were_had(make_limit: MakeLimit) -> None:
    """A worker takes its permit before it claims its jobs, and its turn to send just before
    the call: the sends keep the pace, however the claims between spread them."""
    limit = make_limit(rate=10, max_in_flight=100)
    turns = []
    with limit.permit(timeout=5), limit.permit(timeout=5):  # two permits taken...
        for _ in range(4):  # ...then sends bunched together
            limit.pace(timeout=5)
            turns.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(turns)]
    assert min(gaps) >= (1 + PACE_MARGIN) / 10 - 0.01


def test_concurrency_never_exceeds_the_cap(make_limit: MakeLimit) -> None:
    limit = make_limit(rate=1000, max_in_flight=3)
    lock, current, peak = threading.Lock(), [0], [0]
    done = threading.Event()

    def call() -> None:
        with limit.permit(timeout=10):
            with lock:
                current[0] += 1
                peak[0] = max(peak[0], current[0])
            done.wait(0.05)
            with lock:
                current[0] -= 1

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert peak[0] == 3


def test_a_pause_holds_every_caller_back(make_limit: MakeLimit) -> None:
    limit = make_limit(rate=1000, max_in_flight=10)
    limit.pause(0.4)
    start = time.monotonic()
    with limit.permit(timeout=5):
        waited = time.monotonic() - start
    assert waited >= 0.3


def test_no_permit_within_the_deadline_raises(make_limit: MakeLimit) -> None:
    limit = make_limit(rate=1000, max_in_flight=10)
    limit.pause(5)
    with pytest.raises(LimitTimeout), limit.permit(timeout=0.2):
        pass


def test_two_processes_share_one_redis_limit() -> None:
    prefix = f"remixq:test:{uuid.uuid4().hex}"
    first, second = (
        RedisLimit(
            redis.Redis.from_url(REDIS_URL),
            rate=1000,
            max_in_flight=1,
            lease_seconds=LEASE,
            prefix=prefix,
        )
        for _ in range(2)
    )
    with first.permit(timeout=1), pytest.raises(LimitTimeout), second.permit(timeout=0.3):
        pass
    with second.permit(timeout=1):  # released by `first`
        pass


def test_an_unreachable_redis_falls_back_to_a_per_process_limit() -> None:
    from remixq.cli.processes import free_port

    limit = RedisLimit.from_url(
        f"redis://127.0.0.1:{free_port()}/0", rate=1000, max_in_flight=1, lease_seconds=LEASE
    )
    with limit.permit(timeout=1), pytest.raises(LimitTimeout), limit.permit(timeout=0.2):
        pass  # the fallback still caps calls in flight
    limit.pause(0.3)
    start = time.monotonic()
    with limit.permit(timeout=2):
        assert time.monotonic() - start >= 0.2
