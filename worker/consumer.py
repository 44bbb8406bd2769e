"""The worker's consumer: Celery's, made to survive its broker going away.

Celery 5.7's consumer, on losing its broker after it had connected, first `collect`s the broken
connection, which closes its channels and then detaches the transport from the connection
(`transport.client = None`), and then closes the connection again. With kombu's Redis
transport, that second close asks the default channel once more to give back the messages it
holds unacknowledged (late acks: every message a task is running for) and, its connection pool
gone with the first close, the channel builds a new one from `transport.client.hostname`:
`AttributeError: 'NoneType' object has no attribute 'hostname'`. The consumer only expects
connection errors there, so the AttributeError escaped to the worker, which stopped with
`Unrecoverable error`, about one Redis restart in two (docs/reliability.md). The close of a
connection already known to be broken cannot give anything back anyway (the broker is gone);
the messages stay unacknowledged in the broker, where a dead worker's are found by the relay
(REMIXQ_RELAY_QUEUED_STALE) and by Redis' visibility timeout.

So this consumer tolerates that one failure of the cleanup and goes on to reconnect as Celery
meant it to. `worker.health` follows the consumer's connection for the health check.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

log = logging.getLogger("remixq.worker")


class Consumer(CeleryConsumer):
    """Celery's consumer (`worker_consumer`), reconnecting after any broker loss."""

    def on_connection_error_after_connected(self, exc: Any) -> None:
        try:
            super().on_connection_error_after_connected(exc)
        except AttributeError as failed:
            # The cleanup of the broken connection (module docstring); Celery has already let
            # go of it (`self.connection` is None), so the reconnect that follows starts anew.
            self.connection = None
            log.warning(
                "the broken broker connection could not be closed cleanly; reconnecting",
                extra={"error": repr(failed)},
            )
