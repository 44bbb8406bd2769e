"""Settings, read from the environment in one place.

Every process (CLI, worker, receiver, beat) builds one `Settings` at start-up and passes it down;
nothing else reads `os.environ`. The embedded default needs no server: SQLite for the database,
kombu's SQLAlchemy transport over SQLite for the broker, and the local simulator for Runware.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from remixq.errors import FieldError, InvalidInput
from remixq.files import private_dir, tighten

DEFAULT_RUNWARE_API_URL = "https://api.runware.ai/v1"
DEFAULT_IDEOGRAM_API_URL = "https://api.ideogram.ai"
DEFAULT_DATA_DIR = Path("remixq-data")
DEFAULT_SIMULATOR_PORT = 8700
DEFAULT_RECEIVER_PORT = 8701
# The ledger's guards against a leaked webhook URL (the settings below say why these values).
DEFAULT_MAX_IMAGE_COST = Decimal(10)
DEFAULT_INBOX_MAX_PER_TASK = 96
DEFAULT_MAX_MATRIX_JOBS = 10_000
# The provider image hosts the documentation shows (../shared/spec: every example's imageURL,
# and Ideogram's own API's example url, runware-platform.md §9).
DEFAULT_IMAGE_HOSTS = ("im.runware.ai", "ideogram.ai")


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """The whole configuration; see the README's table for each variable."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    data_dir: Path = Field(DEFAULT_DATA_DIR, validation_alias=_env("REMIXQ_DATA_DIR"))
    database_url: str | None = Field(None, validation_alias=_env("REMIXQ_DATABASE_URL"))
    broker_url: str | None = Field(None, validation_alias=_env("REMIXQ_BROKER_URL"))
    runware_api_url: str = Field(DEFAULT_RUNWARE_API_URL, validation_alias=_env("RUNWARE_API_URL"))
    runware_api_key: SecretStr | None = Field(None, validation_alias=_env("RUNWARE_API_KEY"))
    # Ideogram's own API (provider "ideogram"): without a key, the local simulator stands in.
    ideogram_api_url: str = Field(
        DEFAULT_IDEOGRAM_API_URL, validation_alias=_env("IDEOGRAM_API_URL")
    )
    ideogram_api_key: SecretStr | None = Field(None, validation_alias=_env("IDEOGRAM_API_KEY"))
    # A call blocks until its images exist (seconds to tens of seconds): a generous read timeout.
    ideogram_timeout: float = Field(120.0, gt=0, validation_alias=_env("REMIXQ_IDEOGRAM_TIMEOUT"))
    public_url: str | None = Field(None, validation_alias=_env("REMIXQ_PUBLIC_URL"))
    webhook_secret: SecretStr | None = Field(None, validation_alias=_env("REMIXQ_WEBHOOK_SECRET"))
    production: bool = Field(False, validation_alias=_env("REMIXQ_PRODUCTION"))

    simulator_port: int = Field(
        DEFAULT_SIMULATOR_PORT, validation_alias=_env("REMIXQ_SIMULATOR_PORT")
    )
    receiver_port: int = Field(DEFAULT_RECEIVER_PORT, validation_alias=_env("REMIXQ_RECEIVER_PORT"))

    # Submission policy.
    submit_max_retries: int = Field(8, ge=0, validation_alias=_env("REMIXQ_SUBMIT_MAX_RETRIES"))
    submit_backoff_base: float = Field(
        1.0, gt=0, validation_alias=_env("REMIXQ_SUBMIT_BACKOFF_BASE")
    )
    submit_backoff_cap: float = Field(
        60.0, gt=0, validation_alias=_env("REMIXQ_SUBMIT_BACKOFF_CAP")
    )
    http_connect_timeout: float = Field(
        3.05, gt=0, validation_alias=_env("REMIXQ_HTTP_CONNECT_TIMEOUT")
    )
    http_read_timeout: float = Field(30.0, gt=0, validation_alias=_env("REMIXQ_HTTP_READ_TIMEOUT"))
    submit_batch: int = Field(10, ge=1, le=100, validation_alias=_env("REMIXQ_SUBMIT_BATCH"))
    # Longer than the longest provider call a live worker holds a claim for (connect + read
    # timeouts, 3.05 + 30 s: the permit is taken before the claim), so a slow answer is never
    # taken over; short enough that a dead worker's jobs move on within about a minute.
    claim_lease_seconds: float = Field(45.0, gt=0, validation_alias=_env("REMIXQ_CLAIM_LEASE"))

    # Reliability: the relay, the reconciler and the global limit on provider calls.
    relay_interval: float = Field(10.0, gt=0, validation_alias=_env("REMIXQ_RELAY_INTERVAL"))
    relay_pending_grace: float = Field(
        15.0, ge=0, validation_alias=_env("REMIXQ_RELAY_PENDING_GRACE")
    )
    # A queued job this old is checked against the broker (a message still waiting there is
    # not lost): with the relay's interval, a message lost with the broker is published again
    # within about a minute, while a long healthy backlog is left alone.
    relay_queued_stale: float = Field(
        45.0, gt=0, validation_alias=_env("REMIXQ_RELAY_QUEUED_STALE")
    )
    reconcile_interval: float = Field(
        15.0, gt=0, validation_alias=_env("REMIXQ_RECONCILE_INTERVAL")
    )
    # A generation takes seconds and the provider retries a failed webhook for about half a
    # minute (250 ms doubling to 8 s, ../shared/spec/README.md); polling after that asks only
    # about results whose webhooks were really lost, one getResponse each, then doubling.
    reconcile_after: float = Field(45.0, gt=0, validation_alias=_env("REMIXQ_RECONCILE_AFTER"))
    reconcile_backoff_cap: float = Field(
        600.0, gt=0, validation_alias=_env("REMIXQ_RECONCILE_BACKOFF_CAP")
    )
    reconcile_batch: int = Field(50, gt=0, validation_alias=_env("REMIXQ_RECONCILE_BATCH"))
    reconcile_final_check: int = Field(
        3, ge=1, validation_alias=_env("REMIXQ_RECONCILE_FINAL_CHECK")
    )
    job_max_age: float = Field(86400.0, gt=0, validation_alias=_env("REMIXQ_JOB_MAX_AGE"))
    # Seconds between checks, under beat, that a refused account (401/402/403) is usable
    # again; 0: only `remixq resume` lifts the pause.
    account_probe_interval: float = Field(
        180.0, ge=0, validation_alias=_env("REMIXQ_ACCOUNT_PROBE_INTERVAL")
    )
    rate_limit: float = Field(100.0, gt=0, validation_alias=_env("REMIXQ_RATE_LIMIT"))
    max_in_flight: int = Field(128, gt=0, validation_alias=_env("REMIXQ_MAX_IN_FLIGHT"))
    redis_url: str | None = Field(None, validation_alias=_env("REMIXQ_REDIS_URL"))

    # Native (synchronous) provider calls: Ideogram's own API (remixq.native, worker.native).
    # Calls in flight at once per worker process serving the native queue: each holds a thread
    # for the whole generation (seconds to tens of seconds), on a pool of its own.
    native_concurrency: int = Field(
        8, ge=1, le=256, validation_alias=_env("REMIXQ_NATIVE_CONCURRENCY")
    )
    # Threads of a worker's background pool: beat's ticks and the image downloads, on a pool of
    # their own so that submissions waiting on the provider's limit never hold them back.
    background_concurrency: int = Field(
        16, ge=1, le=256, validation_alias=_env("REMIXQ_BACKGROUND_CONCURRENCY")
    )
    # What a call whose answer was lost (a timeout after sending, a worker that died mid-call)
    # becomes: "fail" (the job fails with code possiblyCharged; `remixq retry` is a conscious
    # second charge) or "retry" (called again at once, accepting a possible second charge).
    ideogram_lost_answer: Literal["fail", "retry"] = Field(
        "fail", validation_alias=_env("REMIXQ_IDEOGRAM_LOST_ANSWER")
    )
    # Calls per second to Ideogram's API, across workers (the shared limiter, as REMIXQ_RATE_LIMIT
    # is Runware's): its own budget, so neither provider's backlog slows the other's calls.
    ideogram_rate_limit: float = Field(
        10.0, gt=0, validation_alias=_env("REMIXQ_IDEOGRAM_RATE_LIMIT")
    )

    # Receiver.
    max_webhook_bytes: int = Field(
        1_048_576, gt=0, validation_alias=_env("REMIXQ_MAX_WEBHOOK_BYTES")
    )
    # Webhooks one receiver process holds waiting for the database; beyond it, a 503 at once.
    receiver_queue_max: int = Field(1024, gt=0, validation_alias=_env("REMIXQ_RECEIVER_QUEUE_MAX"))

    # What one leaked webhook URL can do to the ledger and the disk (docs/security.md).
    # The most one image may cost, in USD: the listed prices are 0.03 to 0.09 per image (0.18
    # for the spec's one video example), so 10 is a hundred times the dearest image and far
    # below what the ledger's column holds (99,999,999). A dearer cost is refused, not stored.
    max_image_cost: Decimal = Field(
        DEFAULT_MAX_IMAGE_COST,
        gt=0,
        allow_inf_nan=False,
        validation_alias=_env("REMIXQ_MAX_IMAGE_COST"),
    )
    # Bodies the inbox keeps per task: 4 deliveries of each image of the largest job
    # (numberResults 20) and 16 more. Later deliveries are still applied, but only counted
    # (`jobs.inbox_overflow`), their bodies not kept.
    inbox_max_per_task: int = Field(
        DEFAULT_INBOX_MAX_PER_TASK, ge=1, validation_alias=_env("REMIXQ_INBOX_MAX_PER_TASK")
    )
    # Seconds an inbox row that no replay needs is kept (processed, invalid, rejected): 7 days.
    inbox_retention: float = Field(604800.0, gt=0, validation_alias=_env("REMIXQ_INBOX_RETENTION"))
    # Seconds between prunes of the inbox under beat; 0: only `remixq inbox prune`.
    inbox_prune_interval: float = Field(
        3600.0, ge=0, validation_alias=_env("REMIXQ_INBOX_PRUNE_INTERVAL")
    )
    # Slow clients (webhook_receiver.connections): a connection's first request must bring its
    # headers within the first timeout of the accept, its body within the second after that;
    # a process holds at most `receiver_connections`, shedding the slowest near the limit.
    receiver_header_timeout: float = Field(
        10.0, gt=0, validation_alias=_env("REMIXQ_RECEIVER_HEADER_TIMEOUT")
    )
    receiver_body_timeout: float = Field(
        10.0, gt=0, validation_alias=_env("REMIXQ_RECEIVER_BODY_TIMEOUT")
    )
    receiver_connections: int = Field(
        1000, ge=10, validation_alias=_env("REMIXQ_RECEIVER_CONNECTIONS")
    )

    # Campaign files: folders besides a campaign file's own from which it may read local
    # reference images (os.pathsep-separated), and whether user-given URLs (uploadEndpoint,
    # reference images) may name private, loopback or link-local hosts.
    image_dirs: Annotated[tuple[Path, ...], NoDecode] = Field(
        (), validation_alias=_env("REMIXQ_IMAGE_DIRS")
    )
    refuse_private_urls: bool = Field(False, validation_alias=_env("REMIXQ_REFUSE_PRIVATE_URLS"))
    # Campaign spec files: the most jobs a matrix may expand to without `--allow-large`.
    max_matrix_jobs: int = Field(
        DEFAULT_MAX_MATRIX_JOBS, ge=1, validation_alias=_env("REMIXQ_MAX_MATRIX_JOBS")
    )
    # Schedules (remixq.schedules): seconds between firing rounds under beat; an occurrence not
    # fired within `schedule_late_after` seconds of its time was missed (its schedule's catch-up
    # policy decides); the default cap of the `all` policy (occurrences fired after an outage).
    schedule_interval: float = Field(
        15.0, gt=0, le=30, validation_alias=_env("REMIXQ_SCHEDULE_INTERVAL")
    )
    schedule_late_after: float = Field(
        120.0, gt=0, validation_alias=_env("REMIXQ_SCHEDULE_LATE_AFTER")
    )
    schedule_catch_up_max: int = Field(
        10, ge=1, le=1000, validation_alias=_env("REMIXQ_SCHEDULE_CATCH_UP_MAX")
    )
    # A JSON or YAML file of prices (USD per image) replacing the defaults (remixq.pricing).
    price_table_path: Path | None = Field(None, validation_alias=_env("REMIXQ_PRICE_TABLE"))

    # Image assets (remixq.assets): where the copies go, what a fetch may reach, how it retries.
    # file:///absolute/path, or s3://bucket/prefix (boto3, the `s3` extra); None: a folder
    # `images` in the data folder.
    storage_url: str | None = Field(None, validation_alias=_env("REMIXQ_STORAGE_URL"))
    s3_endpoint_url: str | None = Field(None, validation_alias=_env("REMIXQ_S3_ENDPOINT_URL"))
    # Hosts (`name`, `name:port`, `*.suffix`) image URLs may name: HTTPS and public addresses
    # only. The local hosts may also be reached over plain HTTP and at private, loopback or
    # link-local addresses; the local simulator's origin is one when it is the provider.
    image_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_IMAGE_HOSTS, validation_alias=_env("REMIXQ_IMAGE_HOSTS")
    )
    image_local_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=_env("REMIXQ_IMAGE_LOCAL_HOSTS")
    )
    image_max_bytes: int = Field(
        32 * 1_048_576, gt=0, validation_alias=_env("REMIXQ_IMAGE_MAX_BYTES")
    )
    # The whole of one download (every redirect included), after the connect timeout of each.
    image_fetch_timeout: float = Field(
        60.0, gt=0, validation_alias=_env("REMIXQ_IMAGE_FETCH_TIMEOUT")
    )
    # Seconds between the sweeps that hand pending assets to the workers (under beat).
    asset_sweep_interval: float = Field(
        2.0, gt=0, validation_alias=_env("REMIXQ_ASSET_SWEEP_INTERVAL")
    )
    # An asset handed over (on the broker, or being fetched) and not finished after this long
    # is handed over again: its message was lost or its worker died. Above the fetch timeout.
    asset_lease: float = Field(120.0, gt=0, validation_alias=_env("REMIXQ_ASSET_LEASE"))
    # Assets handed over and not finished at once, at most (the sweep tops up to this).
    asset_in_flight: int = Field(1000, ge=1, validation_alias=_env("REMIXQ_ASSET_IN_FLIGHT"))
    asset_max_attempts: int = Field(10, ge=1, validation_alias=_env("REMIXQ_ASSET_MAX_ATTEMPTS"))
    asset_backoff_base: float = Field(2.0, gt=0, validation_alias=_env("REMIXQ_ASSET_BACKOFF_BASE"))
    asset_backoff_cap: float = Field(300.0, gt=0, validation_alias=_env("REMIXQ_ASSET_BACKOFF_CAP"))
    # How long a link without a `ttl` in its request is retried (its lifetime is undocumented).
    asset_retry_window: float = Field(
        86400.0, gt=0, validation_alias=_env("REMIXQ_ASSET_RETRY_WINDOW")
    )

    @field_validator("image_dirs", mode="before")
    @classmethod
    def _path_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(Path(part) for part in value.split(os.pathsep) if part.strip())
        return value

    # Operations: log lines as `plain` key=value text or `json` objects (remixq.logs); the
    # receiver's access log (gunicorn's, tokens redacted); the port on which a worker or beat
    # serves /metrics and /healthz (unset: none; the receiver serves both on its own port).
    log_format: Literal["plain", "json"] = Field(
        "plain", validation_alias=_env("REMIXQ_LOG_FORMAT")
    )
    access_log: bool = Field(False, validation_alias=_env("REMIXQ_ACCESS_LOG"))
    metrics_port: int | None = Field(
        None, ge=1, le=65535, validation_alias=_env("REMIXQ_METRICS_PORT")
    )

    @field_validator("image_hosts", "image_local_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    # The REST API (under /api/v1): largest request body, refused with 413 before it is read.
    api_max_body_bytes: int = Field(
        16 * 1_048_576, gt=0, validation_alias=_env("REMIXQ_API_MAX_BODY_BYTES")
    )

    # The dashboard (webhook_receiver.dashboard): the key that signs its session cookies and
    # CSRF tokens (generated into the data folder when unset: set it when several hosts serve
    # the dashboard), whether its cookie is always `Secure` (otherwise only on an https
    # request), and how long a sign-in lasts.
    dashboard_secret: SecretStr | None = Field(
        None, validation_alias=_env("REMIXQ_DASHBOARD_SECRET")
    )
    dashboard_secure_cookie: bool = Field(
        False, validation_alias=_env("REMIXQ_DASHBOARD_SECURE_COOKIE")
    )
    dashboard_session_hours: float = Field(
        12.0, gt=0, le=24 * 30, validation_alias=_env("REMIXQ_DASHBOARD_SESSION_HOURS")
    )

    @field_validator(
        "database_url",
        "broker_url",
        "metrics_port",
        "price_table_path",
        "public_url",
        "redis_url",
        "runware_api_key",
        "ideogram_api_key",
        "s3_endpoint_url",
        "storage_url",
        "webhook_secret",
        "dashboard_secret",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    # -- derived values -------------------------------------------------------------------------

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'remixq.sqlite').resolve()}"

    @property
    def broker(self) -> str:
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{(self.data_dir / 'broker.sqlite').resolve()}"

    @property
    def limiter_redis_url(self) -> str | None:
        """Where the global provider limit lives: REMIXQ_REDIS_URL, else a Redis broker."""
        if self.redis_url:
            return self.redis_url
        if self.broker.startswith(("redis://", "rediss://")):
            return self.broker
        return None

    @property
    def storage(self) -> str:
        """Where image assets are stored: REMIXQ_STORAGE_URL, else `images` in the data folder."""
        if self.storage_url:
            return self.storage_url
        return (self.data_dir / "images").resolve().as_uri()

    @property
    def local_image_hosts(self) -> tuple[str, ...]:
        """REMIXQ_IMAGE_LOCAL_HOSTS, and the simulator's origin (`host:port`) when it is the
        provider: its image URLs name the address the worker reached it at."""
        hosts = self.image_local_hosts
        simulated = [self.api_url] if self.uses_simulator else []
        if self.ideogram_uses_simulator:
            simulated.append(self.ideogram_url)
        for url in simulated:
            parts = urlsplit(url)
            if parts.hostname:
                port = parts.port or (443 if parts.scheme == "https" else 80)
                origin = f"{parts.hostname.lower()}:{port}"
                if origin not in hosts:
                    hosts = (*hosts, origin)
        return hosts

    @property
    def uses_simulator(self) -> bool:
        return self.runware_api_key is None

    @property
    def api_url(self) -> str:
        if self.uses_simulator and self.runware_api_url == DEFAULT_RUNWARE_API_URL:
            return f"http://127.0.0.1:{self.simulator_port}/v1"
        return self.runware_api_url

    @property
    def api_key(self) -> str:
        # The simulator accepts any non-empty key; a real key is never logged or shown.
        return self.runware_api_key.get_secret_value() if self.runware_api_key else "simulator"

    @property
    def ideogram_uses_simulator(self) -> bool:
        return self.ideogram_api_key is None

    @property
    def ideogram_url(self) -> str:
        """Ideogram's API base URL (the client adds /v1/ideogram-v3/remix): the local simulator
        when there is no key and IDEOGRAM_API_URL is left at Ideogram's own."""
        if self.ideogram_uses_simulator and self.ideogram_api_url == DEFAULT_IDEOGRAM_API_URL:
            return f"http://127.0.0.1:{self.simulator_port}"
        return self.ideogram_api_url.rstrip("/")

    @property
    def ideogram_key(self) -> str:
        # The simulator accepts any non-empty key; a real key is never logged or shown.
        return self.ideogram_api_key.get_secret_value() if self.ideogram_api_key else "simulator"

    @property
    def native_claim_lease_seconds(self) -> float:
        """The claim lease of a native (synchronous) call: the call's own timeout
        (REMIXQ_IDEOGRAM_TIMEOUT) plus REMIXQ_CLAIM_LEASE, so that a live worker's call is never
        taken for a dead worker's (whose expired claim is a lost answer: remixq.native)."""
        return self.ideogram_timeout + self.claim_lease_seconds

    @property
    def webhook_base_url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.receiver_port}").rstrip("/")

    def configured_secrets(self) -> tuple[str, ...]:
        """The API key, the webhook secret and the dashboard's, when set: what no log line may
        show."""
        values = (
            self.runware_api_key,
            self.ideogram_api_key,
            self.webhook_secret,
            self.dashboard_secret,
        )
        return tuple(value.get_secret_value() for value in values if value is not None)

    def secret(self) -> bytes:
        """The key of the per-job webhook tokens.

        Required in production; for local use it is generated once and kept beside the database,
        so that every process of one installation agrees on it.
        """
        if self.webhook_secret is not None:
            return self.webhook_secret.get_secret_value().encode()
        self.check_secret()
        return self._stored_secret("webhook-secret")

    def dashboard_secret_key(self) -> bytes:
        """The key that signs the dashboard's session cookies and CSRF tokens: the setting, or
        one generated once into the data folder (0600), as the webhook secret is."""
        if self.dashboard_secret is not None:
            return self.dashboard_secret.get_secret_value().encode()
        return self._stored_secret("dashboard-secret")

    def _stored_secret(self, name: str) -> bytes:
        """The secret kept in the data folder's file `name`, generated on first use."""
        path = self.data_dir / name
        if not path.exists():
            private_dir(self.data_dir)
            candidate = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
            candidate.write_text(secrets.token_urlsafe(32))
            candidate.chmod(0o600)
            try:
                # A hard link fails if another process won the race; the winner's secret is kept.
                os.link(candidate, path)
            except FileExistsError:
                pass
            finally:
                candidate.unlink(missing_ok=True)
        tighten(path)  # a secret file made wider by hand (or by an older version) is fixed
        return path.read_text().strip().encode()

    def check_secret(self) -> None:
        """Refuse a production configuration without a webhook secret. Called at start-up by
        every process that issues or checks webhook tokens (the receiver, when its app is made
        and before gunicorn starts; the worker and beat), so that one that cannot work refuses
        to start instead of looking healthy and failing every webhook."""
        if self.production and self.webhook_secret is None:
            raise InvalidInput(
                [
                    FieldError(
                        "REMIXQ_WEBHOOK_SECRET",
                        "",
                        "a secret is required when REMIXQ_PRODUCTION is on (the webhook tokens"
                        " of the jobs are derived from it; the same value in every process)",
                    )
                ]
            )

    def ensure_data_dir(self) -> None:
        """The embedded default's folder, owner-only (remixq.files): it holds the database, the
        broker's database and the webhook secret."""
        private_dir(self.data_dir)


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; keyword overrides win (used by tests and the CLI)."""
    return Settings(**overrides)  # type: ignore[arg-type]
