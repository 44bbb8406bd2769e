"""kombu's Redis transport as the worker uses it (worker.broker.RedisTransport): once Celery has
collected a broken connection, a call on its old channel fails as a lost connection, which
Celery recovers from, not with the AttributeError that stopped the worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from kombu import Connection
from kombu import transport as kombu_transport
from kombu.transport import TRANSPORT_ALIASES

from tests.support.databases import REDIS_URL
from worker.broker import use_resilient_redis_transport


@pytest.fixture
def aliases() -> Iterator[None]:
    saved = dict(TRANSPORT_ALIASES)
    yield
    TRANSPORT_ALIASES.clear()
    TRANSPORT_ALIASES.update(saved)
    kombu_transport._transport_cache.clear()


def _collected_channel() -> tuple[Connection, object]:
    """An open channel whose connection Celery's consumer has collected after a loss (the
    channel's own close failed: the broker was gone): the transport detached from the
    connection, as `Connection._do_close_transport` leaves it, the channel's pool gone with
    its clients."""
    connection = Connection(REDIS_URL)
    channel = connection.default_channel
    transport = connection.transport
    channel._pool = None  # type: ignore[attr-defined]
    transport.client = None
    return connection, channel


def test_kombus_own_channel_fails_with_an_attribute_error(aliases: None) -> None:
    """The cause, as kombu 5.7 has it (the test fails once kombu fixes it: then drop ours)."""
    TRANSPORT_ALIASES["redis"] = "kombu.transport.redis:Transport"
    kombu_transport._transport_cache.clear()
    _, channel = _collected_channel()
    with pytest.raises(AttributeError, match="hostname"):
        channel._connparams()  # type: ignore[attr-defined]


def test_ours_fails_as_a_lost_connection_which_celery_recovers_from(aliases: None) -> None:
    use_resilient_redis_transport()
    connection, channel = _collected_channel()
    with pytest.raises(redis.ConnectionError):
        channel._connparams()  # type: ignore[attr-defined]
    assert isinstance(redis.ConnectionError(), connection.connection_errors)
