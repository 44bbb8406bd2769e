"""The server-less broker of the embedded default: kombu's SQLAlchemy transport over SQLite,
polled every 50 ms instead of every second.

kombu forwards every transport option of this transport to `create_engine`, so the polling
interval cannot be passed as an option; a subclass carries it instead, registered under the
`sqla` URL prefix when the embedded broker is in use.
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport

POLLING_INTERVAL = 0.05


class Transport(SQLAlchemyTransport):
    polling_interval = POLLING_INTERVAL


def use_fast_sqlalchemy_transport() -> None:
    TRANSPORT_ALIASES["sqla"] = f"{__name__}:Transport"
    TRANSPORT_ALIASES["sqlalchemy"] = f"{__name__}:Transport"
