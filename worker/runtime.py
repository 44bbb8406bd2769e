"""Per-process resources of a worker: the engine, the session factory, the provider clients,
the shared limits on their calls and the webhook URL each job is handed over with.

Made lazily in the process that uses them (after a prefork fork), never at import time; the
client is per thread, since a thread pool runs many submissions at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property

import requests
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from remixq.assets.policy import FetchPolicy
from remixq.assets.storage import Storage, open_storage
from remixq.config import Settings
from remixq.db import make_engine, make_sessionmaker
from remixq.pricing import PriceTable
from remixq.providers.ideogram.client import IdeogramClient
from remixq.providers.runware import RunwareClient
from remixq.security import webhook_url_for
from worker.ratelimit import LocalLimit, ProviderLimit, RedisLimit


class Runtime:
    """`http_session`, when given, makes the HTTP session of each thread's provider client (a
    test mounts a fake transport on it); by default the client makes its own."""

    def __init__(
        self, settings: Settings, *, http_session: Callable[[], requests.Session] | None = None
    ):
        self.settings = settings
        self._http_session = http_session
        self._local = threading.local()

    @cached_property
    def engine(self) -> Engine:
        return (
            make_engine(self.settings.database, pool_size=20, max_overflow=40)
            if not (self.settings.database.startswith("sqlite"))
            else make_engine(self.settings.database)
        )

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def limit(self) -> ProviderLimit:
        url = self.settings.limiter_redis_url
        if url:
            return RedisLimit.from_url(
                url,
                rate=self.settings.rate_limit,
                max_in_flight=self.settings.max_in_flight,
                lease_seconds=self.settings.claim_lease_seconds,
            )
        return LocalLimit(rate=self.settings.rate_limit, max_in_flight=self.settings.max_in_flight)

    @cached_property
    def prices(self) -> PriceTable:
        """The price table (REMIXQ_PRICES): the cost of a provider's images when its answers
        carry none (remixq.native)."""
        return PriceTable.configured(self.settings)

    @cached_property
    def native_limit(self) -> ProviderLimit:
        """The shared limit on calls to Ideogram's own API: a budget of its own
        (REMIXQ_IDEOGRAM_RATE_LIMIT), so that neither provider's backlog slows the other."""
        settings = self.settings
        in_flight = settings.max_in_flight
        url = settings.limiter_redis_url
        if url:
            return RedisLimit.from_url(
                url,
                rate=settings.ideogram_rate_limit,
                max_in_flight=in_flight,
                lease_seconds=settings.native_claim_lease_seconds,
                prefix="remixq:provider:ideogram",
            )
        return LocalLimit(rate=settings.ideogram_rate_limit, max_in_flight=in_flight)

    @cached_property
    def webhook_url_for(self) -> Callable[[str], str]:
        """The webhook URL of a job, from this worker's settings (REMIXQ_PUBLIC_URL, the receiver
        port, REMIXQ_WEBHOOK_SECRET): the deployment that submits a job is the one whose
        receiver must accept its webhooks, whoever stored it."""
        return webhook_url_for(self.settings)

    @cached_property
    def storage(self) -> Storage:
        """Where image assets are stored (REMIXQ_STORAGE_URL)."""
        return open_storage(self.settings)

    @cached_property
    def fetch_policy(self) -> FetchPolicy:
        """Where an image download may go (REMIXQ_IMAGE_HOSTS, ...: remixq.assets.policy)."""
        return FetchPolicy.of(self.settings)

    @property
    def client(self) -> RunwareClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = RunwareClient(
                self.settings.api_url,
                self.settings.api_key,
                timeout=(self.settings.http_connect_timeout, self.settings.http_read_timeout),
                session=self._http_session() if self._http_session else None,
            )
            self._local.client = client
        return client

    @property
    def ideogram(self) -> IdeogramClient:
        """This thread's client of Ideogram's own API (the local simulator without a key)."""
        client = getattr(self._local, "ideogram", None)
        if client is None:
            client = IdeogramClient(
                base_url=self.settings.ideogram_url,
                api_key=self.settings.ideogram_key,
                timeout=self.settings.ideogram_timeout,
                session=self._http_session() if self._http_session else None,
            )
            self._local.ideogram = client
        return client

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
