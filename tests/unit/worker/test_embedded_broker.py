"""The embedded default's broker (`worker.broker`: kombu's SQLAlchemy transport over SQLite):
its file in WAL mode, deliveries through the partial index of waiting rows, in order, and
delivered rows deleted once old."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from kombu import Connection
from kombu import transport as kombu_transport
from kombu.transport import TRANSPORT_ALIASES

from worker.broker import DELIVERED_KEPT, use_fast_sqlalchemy_transport


def test_messages_go_out_in_order_through_the_waiting_index(tmp_path: Path) -> None:
    use_fast_sqlalchemy_transport()
    path = tmp_path / "broker.sqlite"
    with Connection(f"sqla+sqlite:///{path}") as connection:
        queue = connection.SimpleQueue("bench-q")
        for index in range(5):
            queue.put({"n": index})
        taken = [queue.get(timeout=2) for _ in range(3)]
        for message in taken:
            message.ack()
        assert [m.payload["n"] for m in taken] == [0, 1, 2]

        raw = sqlite3.connect(path)
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        plan = " ".join(
            str(row)
            for row in raw.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM kombu_message WHERE queue_id = 1"
                " AND kombu_message.visible = 1 ORDER BY timestamp, id LIMIT 1"
            )
        )
        assert "ix_kombu_message_waiting" in plan
        delivered = raw.execute("SELECT count(*) FROM kombu_message WHERE visible = 0")
        assert delivered.fetchone() == (3,)

        # Rows delivered long ago are deleted; waiting ones and recent deliveries are kept.
        long_ago = datetime.now() - DELIVERED_KEPT - timedelta(minutes=1)  # noqa: DTZ005
        raw.execute(
            "UPDATE kombu_message SET timestamp = ? WHERE visible = 0 AND id IN"
            " (SELECT id FROM kombu_message WHERE visible = 0 ORDER BY id LIMIT 2)",
            (long_ago.isoformat(sep=" "),),
        )
        raw.commit()
        channel = connection.default_channel
        channel._purge_delivered()
        channel.session.commit()
        counts = dict(
            raw.execute("SELECT visible, count(*) FROM kombu_message GROUP BY visible").fetchall()
        )
        assert counts == {0: 1, 1: 2}
        assert [queue.get(timeout=2).payload["n"] for _ in range(2)] == [3, 4]
        raw.close()
        queue.close()


def test_the_fast_transport_replaces_one_kombu_resolved_before(tmp_path: Path) -> None:
    """kombu caches the class a URL scheme resolved to: a connection opened before
    `use_fast_sqlalchemy_transport` (another module, another test in the process) must not leave
    kombu's own transport in place for every later one (seen in CI: a broker file left in
    rollback-journal mode)."""
    from kombu.transport import sqlalchemy as kombu_sqlalchemy

    from worker import broker

    kombu_transport._transport_cache.pop("sqla", None)
    TRANSPORT_ALIASES["sqla"] = "kombu.transport.sqlalchemy:Transport"
    with Connection(f"sqla+sqlite:///{tmp_path / 'first.sqlite'}") as first:
        assert type(first.transport) is kombu_sqlalchemy.Transport
    use_fast_sqlalchemy_transport()
    with Connection(f"sqla+sqlite:///{tmp_path / 'second.sqlite'}") as second:
        assert type(second.transport) is broker.Transport
