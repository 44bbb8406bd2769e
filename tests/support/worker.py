"""A worker's parts in process, for tests of the submission policy: settings on a test database
with the provider behind a fake transport, and the shared provider limit in the test Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from remixq.config import Settings, load_settings
from remixq.providers.runware.testing import FakeTransport
from tests.support.databases import REDIS_URL
from worker.ratelimit import RedisLimit
from worker.runtime import Runtime


def worker_settings(engine: Engine, **overrides: Any) -> Settings:
    """A worker's settings on `engine`'s database, the test Redis as the shared limit's home,
    and a provider URL and key that only a fake transport answers."""
    return load_settings(
        **{
            "database_url": engine.url.render_as_string(hide_password=False),
            "broker_url": "memory://",
            "redis_url": REDIS_URL,
            "runware_api_url": "https://api.runware.test/v1",
            "runware_api_key": "rw-test-key",
            "webhook_secret": "test-secret",
            "rate_limit": 1000.0,
            **overrides,
        }
    )


def other_worker_limit(settings: Settings) -> RedisLimit:
    """The provider limit as another worker process sees it (same Redis, same keys)."""
    return RedisLimit.from_url(
        REDIS_URL,
        rate=settings.rate_limit,
        max_in_flight=settings.max_in_flight,
        lease_seconds=settings.claim_lease_seconds,
    )


@contextmanager
def worker_runtime(settings: Settings) -> Iterator[tuple[Runtime, FakeTransport]]:
    """A worker's runtime whose provider is a fake transport, with no pause or slot of the
    shared limit left by another test, before or after."""
    limit = other_worker_limit(settings)
    limit.redis.delete(*limit.keys)
    transport = FakeTransport()
    runtime = Runtime(settings, http_session=transport.session)
    try:
        yield runtime, transport
    finally:
        runtime.dispose()
        limit.redis.delete(*limit.keys)
