"""A global limit on calls to the provider, shared by every worker on every machine.

Celery's `rate_limit` is per worker; this one lives in Redis: a pace (calls at least
(1 + PACE_MARGIN) / REMIXQ_RATE_LIMIT seconds apart, so that no second holds more than
REMIXQ_RATE_LIMIT calls), a cap on calls in flight (leases that expire, so a killed worker
cannot leak a slot), and a shared pause that any worker sets when the provider answers
429/503/504 (for its Retry-After when it gives one) or refuses the account (401/402/403). All
three are checked and taken in one Lua script, atomically. The embedded default has no Redis:
there the same rules hold per process.

A pace, not a token bucket: a bucket holding a second's worth of tokens let twice the rate
through within one second (the full bucket spent at once, then its refill), which a provider
counting calls per second sees as a breach. The provider counts arrivals, which the network and
the callers' scheduling delay unevenly, and a burst of calls sent at once is delayed most:
calls spread evenly, a tenth of the interval apart more than the rate needs, keep to the limit
as the provider counts while the slowest is up to a tenth of a second later than the others; a
longer stall on a loaded host moves a call into the next second's count (what the provider sees
over a few seconds still keeps to the rate). It costs a tenth of the throughput at the limit:
100 per second is ~91.

Each call takes two turns at the pace. The first with its place in flight (`permit`), before
its jobs are claimed: no more jobs are claimed than can be sent, so a claim never waits with
its jobs taken, and sees what the calls before it did (the overrun that holds a campaign at
its budget). The second just before the call is sent (`pace`, on a pace of its own): whatever
the claim's transaction took (tens of milliseconds, more on a loaded host), the calls leave
spaced at the rate (tests/e2e/test_scale_out.py counted 13 calls in one second at 8 per second
with the first turn alone).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Protocol

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

log = logging.getLogger("remixq.limit")

DEFAULT_PAUSE = 1.0  # seconds, after a 429/503/504 without Retry-After
MAX_WAIT_STEP = 0.25
PACE_MARGIN = 0.1  # the interval between two calls is this much longer than the rate needs


def window_of(rate: float) -> tuple[int, float]:
    """(calls, seconds): at most `calls` in any window of `seconds`, for `rate` calls per
    second: one call per (1 + PACE_MARGIN) / rate seconds (module docstring)."""
    return 1, (1 + PACE_MARGIN) / rate


class LimitTimeout(Exception):
    """No permit within the caller's deadline."""


class ProviderLimit(Protocol):
    def permit(self, timeout: float = 300.0) -> AbstractContextManager[None]: ...

    def pace(self, timeout: float = 300.0) -> None: ...

    def pause(self, seconds: float | None) -> None: ...

    def resume(self) -> None: ...


# ARGV[6], what is taken: "slot" (a place in flight, once no pause holds callers back), "pace"
# (the next call's time at the rate) or "both". The answer is 0 (taken), or the wait: positive
# in milliseconds (a pause, no place in flight), negative in microseconds (the pace, kept to the
# microsecond: at 100,000 calls a second a turn comes every 11 us).
_ACQUIRE = """
local window, inflight, pause = KEYS[1], KEYS[2], KEYS[3]
local calls, window_us, max_in_flight = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local token, lease_ms, mode = ARGV[4], tonumber(ARGV[5]), ARGV[6]
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
if mode ~= 'pace' then
  local paused = redis.call('PTTL', pause)
  if paused > 0 then return paused end
  redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
  if redis.call('ZCARD', inflight) >= max_in_flight then return 20 end
end
if mode ~= 'slot' then
  redis.call('ZREMRANGEBYSCORE', window, '-inf', now_us - window_us)
  if redis.call('ZCARD', window) >= calls then
    local oldest = redis.call('ZRANGE', window, 0, 0, 'WITHSCORES')
    return -math.max(1, tonumber(oldest[2]) + window_us - now_us + 1)
  end
  redis.call('ZADD', window, now_us, token)
  redis.call('PEXPIRE', window, math.ceil(window_us / 1000) * 2 + 1000)
end
if mode ~= 'pace' then
  redis.call('ZADD', inflight, now + lease_ms, token)
  redis.call('PEXPIRE', inflight, lease_ms * 2)
end
return 0
"""


def client_for(url: str) -> redis.Redis:
    """A client that gives up on an unreachable Redis within a second, so that the fallback
    takes over quickly instead of every submission waiting out redis-py's default retries."""
    return redis.Redis.from_url(
        url,
        socket_timeout=5,
        socket_connect_timeout=1,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
    )


class RedisLimit:
    def __init__(
        self,
        client: redis.Redis,
        *,
        rate: float,
        max_in_flight: int,
        lease_seconds: float,
        prefix: str = "remixq:provider",
    ):
        self.redis, self.rate, self.max_in_flight = client, rate, max_in_flight
        # A call in flight longer than this is presumed dead (its worker was killed): the same
        # lease after which a submission's claim is taken over (REMIXQ_CLAIM_LEASE).
        self.lease_ms = int(lease_seconds * 1000)
        self.keys = [f"{prefix}:window", f"{prefix}:inflight", f"{prefix}:pause"]
        self.send_keys = [f"{prefix}:sends", f"{prefix}:inflight", f"{prefix}:pause"]
        self._acquire = client.register_script(_ACQUIRE)
        self._fallback = LocalLimit(rate=rate, max_in_flight=max_in_flight)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        rate: float,
        max_in_flight: int,
        lease_seconds: float,
        prefix: str = "remixq:provider",
    ) -> RedisLimit:
        """`prefix` names the limit's keys: one limit per provider."""
        return cls(
            client_for(url),
            rate=rate,
            max_in_flight=max_in_flight,
            lease_seconds=lease_seconds,
            prefix=prefix,
        )

    @contextmanager
    def permit(self, timeout: float = 300.0) -> Iterator[None]:
        """A place among the calls in flight and a turn at the pace, once no pause holds the
        callers back: taken before the call's jobs are claimed."""
        token = uuid.uuid4().hex
        try:
            self._take(self.keys, token, timeout, "both")
        except redis.RedisError as exc:
            # The limit's store is down (often the broker too): keep each process within the
            # same limits on its own rather than stop submitting altogether.
            log.warning(
                "provider limit store unreachable; limiting per process", extra={"error": str(exc)}
            )
            with self._fallback.permit(timeout):
                yield
            return
        try:
            yield
        finally:
            with suppress(redis.RedisError):  # an unreleased slot expires with its lease
                self.redis.zrem(self.keys[1], token)

    def pace(self, timeout: float = 300.0) -> None:
        """The call's turn to be sent, just before it is (module docstring); no pause is waited
        for here: a caller holding a permit is already under way."""
        try:
            self._take(self.send_keys, uuid.uuid4().hex, timeout, "pace")
        except redis.RedisError:
            self._fallback.pace(timeout)

    def _take(self, keys: list[str], token: str, timeout: float, mode: str) -> None:
        deadline = time.monotonic() + timeout
        calls, seconds = window_of(self.rate)
        args: list[float | int | str] = [
            calls,
            math.ceil(seconds * 1_000_000),
            self.max_in_flight,
            token,
            self.lease_ms,
            mode,
        ]
        while (answer := int(self._acquire(keys=keys, args=args))) != 0:
            wait = answer / 1000 if answer > 0 else -answer / 1_000_000
            if time.monotonic() + wait > deadline:
                raise LimitTimeout(f"no provider permit within {timeout:.0f}s")
            time.sleep(min(wait, MAX_WAIT_STEP))

    def pause(self, seconds: float | None) -> None:
        """Hold every worker back; a longer pause already set is kept."""
        millis = int((seconds or DEFAULT_PAUSE) * 1000)
        try:
            if millis > int(self.redis.pttl(self.keys[2])):
                self.redis.set(self.keys[2], "1", px=millis)
        except redis.RedisError:
            self._fallback.pause(seconds)

    def resume(self) -> None:
        """Lift the shared pause (the account is usable again)."""
        try:
            self.redis.delete(self.keys[2])
        except redis.RedisError:
            log.warning("provider limit store unreachable; its pause ends on its own")
        self._fallback.resume()


class LocalLimit:
    """The same rules within one process (the embedded default has no Redis)."""

    def __init__(self, *, rate: float, max_in_flight: int):
        self.rate = rate
        self._calls, self._window = window_of(rate)
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Lock()
        self._turns: deque[float] = deque()  # the permits' turns
        self._sends: deque[float] = deque()  # the sends' turns
        self._paused_until = 0.0

    def _wait(self, turns: deque[float], *, after_pause: bool) -> float:
        with self._lock:
            now = time.monotonic()
            if after_pause and now < self._paused_until:
                return self._paused_until - now
            while turns and turns[0] <= now - self._window:
                turns.popleft()
            if len(turns) >= self._calls:
                return max(0.001, turns[0] + self._window - now)
            turns.append(now)
            return 0.0

    @contextmanager
    def permit(self, timeout: float = 300.0) -> Iterator[None]:
        deadline = time.monotonic() + timeout
        if not self._slots.acquire(timeout=timeout):
            raise LimitTimeout(f"no provider permit within {timeout:.0f}s")
        try:
            self._until_turn(self._turns, deadline, timeout, after_pause=True)
            yield
        finally:
            self._slots.release()

    def pace(self, timeout: float = 300.0) -> None:
        self._until_turn(self._sends, time.monotonic() + timeout, timeout, after_pause=False)

    def _until_turn(
        self, turns: deque[float], deadline: float, timeout: float, *, after_pause: bool
    ) -> None:
        while (wait := self._wait(turns, after_pause=after_pause)) > 0:
            if time.monotonic() + wait > deadline:
                raise LimitTimeout(f"no provider permit within {timeout:.0f}s")
            time.sleep(min(wait, MAX_WAIT_STEP))

    def pause(self, seconds: float | None) -> None:
        with self._lock:
            until = time.monotonic() + (seconds or DEFAULT_PAUSE)
            self._paused_until = max(self._paused_until, until)

    def resume(self) -> None:
        with self._lock:
            self._paused_until = 0.0
