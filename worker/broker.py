"""The broker as the relay sees it, and the server-less broker of the embedded default.

`messages_held` tells the relay how many messages the broker still holds for a queue, so that
a job waiting in a long backlog is not taken for lost (`remixq.relay`).

The embedded default's broker is kombu's SQLAlchemy transport over SQLite, polled every 50 ms
instead of every second. kombu forwards every transport option of this transport to
`create_engine`, so the polling interval cannot be passed as an option; a subclass carries it
instead, registered under the `sqla` URL prefix when the embedded broker is in use.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from celery import Celery
from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as redis_transport
from kombu.transport import sqlalchemy as sqlalchemy_transport
from kombu.utils.json import loads

POLLING_INTERVAL = 0.05


class Transport(sqlalchemy_transport.Transport):
    polling_interval = POLLING_INTERVAL


def use_fast_sqlalchemy_transport() -> None:
    TRANSPORT_ALIASES["sqla"] = f"{__name__}:Transport"
    TRANSPORT_ALIASES["sqlalchemy"] = f"{__name__}:Transport"


def messages_held(app: Celery, queue: str, *, held_within: timedelta) -> int | None:
    """Messages the broker holds for `queue`: those waiting in it, plus those delivered to a
    worker within `held_within` and not acknowledged yet (prefetched, running under a late ack,
    or waiting for a retry's countdown, which Celery holds unacknowledged until it is due).
    None when the transport cannot tell (then the relay keeps its age-only rule).

    A message held for longer than `held_within` is presumed to belong to a dead worker: Redis
    would only give it back after its visibility timeout, an hour, and the embedded broker never.

    Redis: the queue's list, plus kombu's unacknowledged deliveries routed to the queue.
    The embedded broker: the queue's visible rows, plus its rows delivered within `held_within`;
    kombu keeps delivered rows after their ack, so those include finished messages too, which
    only errs towards patience.
    """
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        if isinstance(channel, redis_transport.Channel):
            after = time.time() - held_within.total_seconds()
            return _waiting(channel, queue) + _unacked_since(channel, queue, after)
        if isinstance(channel, sqlalchemy_transport.Channel):
            since = datetime.now() - held_within  # noqa: DTZ005  kombu's times are local, naive
            return _waiting(channel, queue) + _delivered_since(channel, queue, since)
        return None


def _waiting(channel: object, queue: str) -> int:
    try:
        declared = channel.queue_declare(queue=queue, passive=True)  # type: ignore[attr-defined]
    except ChannelError:  # Redis drops an empty list: nothing waits
        return 0
    return int(declared.message_count)


def _unacked_since(channel: redis_transport.Channel, queue: str, since: float) -> int:
    # kombu indexes each unacknowledged delivery by its time, and keeps the message with its
    # routing key (the queue's name here) beside it; what workers hold is bounded by their
    # prefetch, so reading it all is cheap.
    client = channel.client
    tags = client.zrangebyscore(channel.unacked_index_key, since, "+inf")
    if not tags:
        return 0
    held = client.hmget(channel.unacked_key, tags)
    return sum(1 for entry in held if entry is not None and loads(entry)[2] == queue)


def _delivered_since(channel: sqlalchemy_transport.Channel, queue: str, since: datetime) -> int:
    # kombu stamps a row's `timestamp` (sent_at) with its local clock on every update, the
    # delivery that hides it included.
    message, queue_row = channel.message_cls, channel.queue_cls
    found = channel.session.query(queue_row).filter(queue_row.name == queue).first()
    if found is None:
        return 0
    count = (
        channel.session.query(message)
        .filter(message.queue_id == found.id)
        .filter(message.visible.is_(False))
        .filter(message.sent_at >= since)
        .count()
    )
    channel.session.commit()  # end the read, so that SQLite's writers are not held back
    return int(count)
