"""The broker as the relay sees it, the server-less broker of the embedded default, and kombu's
Redis transport made to fail as a connection fails once its connection is closed.

`messages_held` tells the relay how many messages the broker still holds for a queue, so that
a job waiting in a long backlog is not taken for lost (`remixq.relay`).

The embedded default's broker is kombu's SQLAlchemy transport over SQLite, polled every 50 ms
instead of every second. kombu forwards every transport option of this transport to
`create_engine`, so the polling interval cannot be passed as an option; a subclass carries it
instead, registered under the `sqla` URL prefix when the embedded broker is in use. Its channel
changes three things that made the embedded default slow at size (docs/benchmarks.md, "The
embedded default"):

- the broker's file is in WAL mode with `synchronous=NORMAL`, as remixq's own database is:
  kombu commits every publish and every delivery, and in SQLite's default rollback-journal mode
  each commit cost several fsyncs (62% of `remixq submit`'s time, a fifth of the worker's);
- a delivery looks for the next waiting message through a partial index of the waiting rows:
  kombu keeps every delivered row (`visible` false), and its query walked all of them, oldest
  first, at every poll, so each poll cost more as a campaign went on;
- delivered rows are deleted once they are `DELIVERED_KEPT` old, far past the relay's look-back
  (`messages_held`), so the file does not grow with every message ever sent.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timedelta
from queue import Empty
from typing import Any

import redis
from celery import Celery
from kombu import transport as kombu_transport
from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as redis_transport
from kombu.transport import sqlalchemy as sqlalchemy_transport
from kombu.utils.json import loads
from sqlalchemy import Engine, event, text

POLLING_INTERVAL = 0.05
# Delivered rows older than this are deleted (every PURGE_EVERY deliveries of a channel); the
# relay looks back `REMIXQ_RELAY_QUEUED_STALE` (45 s by default) at most.
DELIVERED_KEPT = timedelta(minutes=10)
PURGE_EVERY = 500
_WAITING_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_{table}_waiting ON {table} (queue_id, timestamp, id)"
    " WHERE visible = 1"
)
_prepared: set[str] = set()
_prepared_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Channel(sqlalchemy_transport.Channel):
    """kombu's SQLAlchemy channel, with the changes of the module's docstring on SQLite."""

    _delivered = 0

    def _open(self) -> Any:
        engine, factory = super()._open()
        key = str(engine.url)
        if key not in _prepared and engine.dialect.name == "sqlite":
            with _prepared_lock:
                if key not in _prepared:
                    self._prepare(engine)
                    _prepared.add(key)
        return engine, factory

    def _prepare(self, engine: Engine) -> None:
        event.listen(engine, "connect", _sqlite_pragmas)
        engine.dispose()  # connections opened before the listener get the pragmas too
        with engine.begin() as connection:
            connection.exec_driver_sql(_WAITING_INDEX.format(table=self.message_tablename))

    def _get(self, queue: str, timeout: Any = None) -> Any:  # noqa: ARG002 (kombu's signature)
        if self.session.bind.name != "sqlite":
            return super()._get(queue)
        obj = self._get_or_create(queue)
        message = self.message_cls
        self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            # `visible = 1` as the partial index has it, so that SQLite takes the index.
            found = (
                self.session.query(message)
                .filter(message.queue_id == obj.id)
                .filter(text(f"{self.message_tablename}.visible = 1"))
                .order_by(message.sent_at, message.id)
                .limit(1)
                .first()
            )
            if found is None:
                raise Empty()
            found.visible = False
            self._delivered += 1
            if self._delivered % PURGE_EVERY == 0:
                self._purge_delivered()
            return loads(found.payload)
        finally:
            self.session.commit()

    def _purge_delivered(self) -> None:
        message = self.message_cls
        before = datetime.now() - DELIVERED_KEPT  # noqa: DTZ005  kombu's times are local, naive
        self.session.query(message).filter(message.visible.is_(False)).filter(
            message.sent_at < before
        ).delete(synchronize_session=False)


class Transport(sqlalchemy_transport.Transport):
    Channel = Channel
    polling_interval = POLLING_INTERVAL


class RedisChannel(redis_transport.Channel):
    """kombu's Redis channel, whose calls after its connection was closed fail as a lost
    connection does.

    When a worker loses its broker, Celery 5.7's consumer collects the broken connection, which
    detaches the transport from it (`transport.client = None`), then closes it again. A call on
    the old channel after that (the second close giving back the messages it holds
    unacknowledged, or the acknowledgement of a task that finished meanwhile, run by the event
    loop) builds a connection pool from `transport.client.hostname`, and failed with
    `AttributeError: 'NoneType' object has no attribute 'hostname'`, which Celery does not take
    for a connection error: the worker stopped with "Unrecoverable error", about one Redis
    restart in two (docs/reliability.md). As a connection error it is what it is: the close
    ignores it, the acknowledgement is logged as lost (the message comes back), and the consumer
    reconnects. tests/chaos/test_process_faults.py restarts the broker with no supervisor."""

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(redis_transport.Transport):
    Channel = RedisChannel


def use_resilient_redis_transport() -> None:
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:RedisTransport"
        # kombu remembers the class a name resolved to: forget one resolved before this call
        kombu_transport._transport_cache.pop(scheme, None)


def use_fast_sqlalchemy_transport() -> None:
    for scheme in ("sqla", "sqlalchemy"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
        # kombu remembers the class a name resolved to: forget one resolved before this call
        kombu_transport._transport_cache.pop(scheme, None)


def messages_held(
    app: Celery,
    queue: str,
    *,
    held_within: timedelta,
    carrying: Callable[[set[int]], set[int]] | None = None,
) -> int | None:
    """Messages the broker holds for `queue`: those waiting in it, plus those delivered to a
    worker within `held_within` and not acknowledged yet (prefetched, running under a late ack,
    or waiting for a retry's countdown, which Celery holds unacknowledged until it is due).
    None when the transport cannot tell (then the relay keeps its age-only rule).

    `carrying`, given the job ids that delivered messages carry, answers those still waiting for
    a message (the relay's queued jobs): a delivered message is counted only while it carries
    one. Without it a finished message, or a duplicate, counts until `held_within` has passed,
    and a lost message could hide behind the ones delivered after it for as long as deliveries
    went on (the relay re-publishing a dead worker's jobs delivers a burst of them).

    A message held for longer than `held_within` is presumed to belong to a dead worker: Redis
    would only give it back after its visibility timeout, an hour, and the embedded broker never.

    Redis: the queue's list, plus kombu's unacknowledged deliveries routed to the queue.
    The embedded broker: the queue's visible rows, plus its rows delivered within `held_within`;
    kombu keeps delivered rows after their ack (`carrying` tells the finished ones).
    RabbitMQ (AMQP): the messages ready in the queue only. AMQP does not tell how many a
    consumer holds unacknowledged (the management API would), so a job whose message a worker
    has held longer than `held_within` (a long prefetch, a retry's countdown) may be published
    again: a duplicate, harmless (a submission first claims its job).
    """
    with app.connection_for_read() as connection:
        if connection.transport.driver_type == "amqp":
            return _ready(connection, queue)
        channel = connection.default_channel
        if isinstance(channel, redis_transport.Channel):
            after = time.time() - held_within.total_seconds()
            held = _unacked_since(channel, queue, after)
        elif isinstance(channel, sqlalchemy_transport.Channel):
            since = datetime.now() - held_within  # noqa: DTZ005  kombu's times are local, naive
            held = _delivered_since(channel, queue, since)
        else:
            return None
        return _waiting(channel, queue) + _still_carrying(held, carrying)


def _still_carrying(
    messages: list[dict[str, Any]], carrying: Callable[[set[int]], set[int]] | None
) -> int:
    if carrying is None or not messages:
        return len(messages)
    carried = [set(job_ids(message)) for message in messages]
    waiting = carrying(set().union(*carried))
    return sum(1 for ids in carried if ids & waiting)


def job_ids(message: dict[str, Any]) -> list[int]:
    """The job ids a submission message carries (Celery's protocol 2 body, `[args, kwargs,
    embed]`: its first argument, a list of ids, or one id for a native call); none for a body
    that is not one."""
    try:
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        first = json.loads(body)[0][0]
        return [int(job_id) for job_id in (first if isinstance(first, list) else [first])]
    except (KeyError, IndexError, TypeError, ValueError):
        return []


def _ready(connection: Any, queue: str) -> int:
    # A channel of its own: a passive declare of a queue that does not exist closes it.
    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except connection.channel_errors:  # not declared yet: nothing waits
        return 0
    finally:
        with suppress(*connection.connection_errors, *connection.channel_errors):
            channel.close()


def _waiting(channel: object, queue: str) -> int:
    try:
        declared = channel.queue_declare(queue=queue, passive=True)  # type: ignore[attr-defined]
    except ChannelError:  # Redis drops an empty list: nothing waits
        return 0
    return int(declared.message_count)


def _unacked_since(channel: redis_transport.Channel, queue: str, since: float) -> list[Any]:
    # kombu indexes each unacknowledged delivery by its time, and keeps the message with its
    # routing key (the queue's name here) beside it; what workers hold is bounded by their
    # prefetch, so reading it all is cheap.
    client = channel.client
    tags = client.zrangebyscore(channel.unacked_index_key, since, "+inf")
    if not tags:
        return []
    held = client.hmget(channel.unacked_key, tags)
    entries = [loads(entry) for entry in held if entry is not None]
    return [message for message, _exchange, routing_key in entries if routing_key == queue]


def _delivered_since(
    channel: sqlalchemy_transport.Channel, queue: str, since: datetime
) -> list[Any]:
    # kombu stamps a row's `timestamp` (sent_at) with its local clock on every update, the
    # delivery that hides it included. The rows are those delivered within `since`: bounded by
    # the delivery rate, not by the backlog.
    message, queue_row = channel.message_cls, channel.queue_cls
    found = channel.session.query(queue_row).filter(queue_row.name == queue).first()
    if found is None:
        return []
    payloads = (
        channel.session.query(message.payload)
        .filter(message.queue_id == found.id)
        .filter(message.visible.is_(False))
        .filter(message.sent_at >= since)
        .all()
    )
    channel.session.commit()  # end the read, so that SQLite's writers are not held back
    return [loads(payload) for (payload,) in payloads]
