"""A global limit on calls to the provider, shared by every worker on every machine.

Celery's `rate_limit` is per worker; this one lives in Redis: a sliding window (at most
REMIXQ_RATE_LIMIT calls in any window of one second), a cap on calls in flight (leases that
expire, so a killed worker cannot leak a slot), and a shared pause that any worker sets when the
provider answers 429/503/504 (for its Retry-After when it gives one) or refuses the account
(401/402/403). All three are checked and taken in one Lua script, atomically. The embedded
default has no Redis: there the same rules hold per process.

The window, not a token bucket: a bucket holding a second's worth of tokens lets twice the rate
through within one second (a full bucket spent at once, then its refill), which a provider
counting calls per second sees as a breach. The window is `WINDOW_MARGIN` longer than the
rate says, because the provider counts arrivals, which the network delays unevenly: a call
granted one second after another must not arrive within the same second as it.
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
WINDOW_MARGIN = 0.05  # seconds added to the window (module docstring)


def window_of(rate: float) -> tuple[int, float]:
    """(calls, seconds): at most `calls` in any window of `seconds`, for `rate` calls per
    second: 100/s is 100 calls a second; 0.5/s, one call every two seconds."""
    calls = max(1, math.floor(rate))
    return calls, calls / rate + WINDOW_MARGIN


class LimitTimeout(Exception):
    """No permit within the caller's deadline."""


class ProviderLimit(Protocol):
    def permit(self, timeout: float = 300.0) -> AbstractContextManager[None]: ...

    def pause(self, seconds: float | None) -> None: ...

    def resume(self) -> None: ...


_ACQUIRE = """
local window, inflight, pause = KEYS[1], KEYS[2], KEYS[3]
local calls, window_ms, max_in_flight = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local token, lease_ms = ARGV[4], tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = redis.call('PTTL', pause)
if paused > 0 then return paused end
redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
if redis.call('ZCARD', inflight) >= max_in_flight then return 20 end
redis.call('ZREMRANGEBYSCORE', window, '-inf', now - window_ms)
if redis.call('ZCARD', window) >= calls then
  local oldest = redis.call('ZRANGE', window, 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window_ms - now + 1)
end
redis.call('ZADD', window, now, token)
redis.call('PEXPIRE', window, window_ms * 2)
redis.call('ZADD', inflight, now + lease_ms, token)
redis.call('PEXPIRE', inflight, lease_ms * 2)
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
        self._acquire = client.register_script(_ACQUIRE)
        self._fallback = LocalLimit(rate=rate, max_in_flight=max_in_flight)

    @classmethod
    def from_url(
        cls, url: str, *, rate: float, max_in_flight: int, lease_seconds: float
    ) -> RedisLimit:
        return cls(
            client_for(url), rate=rate, max_in_flight=max_in_flight, lease_seconds=lease_seconds
        )

    @contextmanager
    def permit(self, timeout: float = 300.0) -> Iterator[None]:
        token = uuid.uuid4().hex
        try:
            self._take(token, timeout)
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

    def _take(self, token: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        calls, seconds = window_of(self.rate)
        args: list[float | int | str] = [
            calls,
            math.ceil(seconds * 1000),
            self.max_in_flight,
            token,
            self.lease_ms,
        ]
        while (wait_ms := int(self._acquire(keys=self.keys, args=args))) != 0:
            if time.monotonic() + wait_ms / 1000 > deadline:
                raise LimitTimeout(f"no provider permit within {timeout:.0f}s")
            time.sleep(min(wait_ms / 1000, MAX_WAIT_STEP))

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
        self._granted: deque[float] = deque()
        self._paused_until = 0.0

    def _wait(self) -> float:
        with self._lock:
            now = time.monotonic()
            if now < self._paused_until:
                return self._paused_until - now
            while self._granted and self._granted[0] <= now - self._window:
                self._granted.popleft()
            if len(self._granted) >= self._calls:
                return max(0.001, self._granted[0] + self._window - now)
            self._granted.append(now)
            return 0.0

    @contextmanager
    def permit(self, timeout: float = 300.0) -> Iterator[None]:
        deadline = time.monotonic() + timeout
        if not self._slots.acquire(timeout=timeout):
            raise LimitTimeout(f"no provider permit within {timeout:.0f}s")
        try:
            while (wait := self._wait()) > 0:
                if time.monotonic() + wait > deadline:
                    raise LimitTimeout(f"no provider permit within {timeout:.0f}s")
                time.sleep(min(wait, MAX_WAIT_STEP))
            yield
        finally:
            self._slots.release()

    def pause(self, seconds: float | None) -> None:
        with self._lock:
            until = time.monotonic() + (seconds or DEFAULT_PAUSE)
            self._paused_until = max(self._paused_until, until)

    def resume(self) -> None:
        with self._lock:
            self._paused_until = 0.0
