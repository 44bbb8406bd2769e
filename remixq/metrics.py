"""The Prometheus metrics of every process, named `remixq_*`, and the gauges read from the
database.

The counters and histograms are made here, once, and incremented by the edges that see the
events: the receiver (webhooks by outcome, ingest latency, group-commit batch sizes), the
worker (submissions by outcome and provider code, retries, provider call latency, the shared
limit's waits and pauses) and beat's periodic work (relay and reconciler actions). Under
gunicorn their values live in prometheus-client's multiprocess files (PROMETHEUS_MULTIPROC_DIR,
which `remixq receiver` sets before anything imports this module), so that `/metrics` adds up
every worker process.

Jobs by status and the spend are facts of the database, not of one process: `DatabaseCollector`
reads them with two aggregate queries when scraped, at most once per `DATABASE_CACHE_SECONDS`,
so any number of scrapers cost the database a query pair per cache period.
The README's "Metrics" section lists every metric with example queries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from remixq.models import Image, Job
from remixq.states import JobStatus

log = logging.getLogger("remixq.metrics")

# -- the receiver ------------------------------------------------------------------------------

WEBHOOK_OUTCOMES = (
    "stored",  # applied, and it stored something new (an image, an error)
    "duplicate",  # applied, nothing new: a redelivery
    "orphan",  # no job has its taskUUID (yet): kept for a replay
    "invalid",  # not something the provider sends (400)
    "refused",  # over a limit of the ledger (400, `rejected` in the inbox)
    "unauthorized",  # a missing or wrong token (401)
    "unavailable",  # the database or the writer's queue could not take it (503)
)
WEBHOOKS = Counter("remixq_webhooks", "Webhooks received, by outcome.", ["outcome"])
INGEST_SECONDS = Histogram(
    "remixq_webhook_ingest_seconds",
    "From a webhook's body read to its answer: the wait for its group commit.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25),
)
BATCH_SIZE = Histogram(
    "remixq_ingest_batch_size",
    "Webhooks stored per group commit (one transaction).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)

# -- the worker --------------------------------------------------------------------------------

SUBMISSION_OUTCOMES = ("accepted", "failed", "retried", "held")
SUBMISSIONS = Counter(
    "remixq_submissions",
    "Jobs submitted to the provider, by outcome (accepted, failed, retried, held by an account"
    " refusal) and the provider's error code (empty when accepted).",
    ["outcome", "code"],
)
RETRIES = Counter(
    "remixq_submission_retries",
    "Submission attempts scheduled again after a transient failure, by error code (jobs).",
    ["code"],
)
PROVIDER_SECONDS = Histogram(
    "remixq_provider_request_seconds",
    "Calls to the provider's API, by operation (submit, get_response) and outcome (ok, error).",
    ["operation", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LIMIT_WAIT_SECONDS = Histogram(
    "remixq_rate_limit_wait_seconds",
    "Time waited for a permit of the global provider limit (rate, in-flight cap, pause).",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
LIMIT_PAUSES = Counter(
    "remixq_rate_limit_pauses",
    "Pauses of every worker set by this process, by reason (throttled: 429/503/504;"
    " account: 401/402/403).",
    ["reason"],
)

NATIVE_CALLS = Counter(
    "remixq_native_calls",
    "Synchronous calls to a provider's own API (Ideogram), by provider and outcome (stored,"
    " retried, failed, lost).",
    ["provider", "outcome"],
)
ANSWERS_LOST = Counter(
    "remixq_provider_answers_lost",
    "Calls whose answer was lost (a timeout after sending, a worker that died mid-call), by"
    " provider: each may have been charged (remixq.native; jobs.lost_answers per job).",
    ["provider"],
)

# -- beat's periodic work ----------------------------------------------------------------------

RELAYED = Counter("remixq_relay_jobs", "Jobs published again by the relay.")
RECONCILER_POLLS = Counter(
    "remixq_reconciler_polls",
    "getResponse polls of the reconciler, by outcome (answered, failed, deferred).",
    ["outcome"],
)
RECONCILED_IMAGES = Counter(
    "remixq_reconciler_images", "Images the reconciler stored (their webhooks were lost)."
)
FAILOVERS = Counter(
    "remixq_failovers",
    "Failed Runware jobs the failover round decided on, by outcome (remixq.failover):"
    " failed_over, refused (no equivalent, budget, not a provider-side failure),"
    " runware_has_it (getResponse had results or work in progress).",
    ["outcome"],
)
EXPIRED = Counter("remixq_jobs_expired", "Open jobs failed as expired (REMIXQ_JOB_MAX_AGE).")


def observe_webhook(inbox_status: str, images_stored: int, duplicates: int) -> None:
    """Count one webhook by the outcome its inbox status and counts say."""
    if inbox_status == "processed":
        outcome = "duplicate" if images_stored == 0 and duplicates > 0 else "stored"
    elif inbox_status == "rejected":
        outcome = "refused"
    else:
        outcome = inbox_status
    WEBHOOKS.labels(outcome).inc()


# -- the database's gauges ---------------------------------------------------------------------

DATABASE_CACHE_SECONDS = 15.0


class DatabaseCollector(Collector):
    """`remixq_jobs{status}` (jobs, not messages: a batch of ten counts ten) and
    `remixq_spend_usd` (the cost of every stored image), read from the database at most once
    per `cache_seconds`. A database that cannot answer leaves them out of the scrape (and
    `remixq_database_up` 0)."""

    def __init__(
        self,
        engine: Callable[[], Engine],
        *,
        cache_seconds: float = DATABASE_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._values: tuple[dict[str, int], Decimal] | None = None

    def collect(self) -> Iterator[Metric]:
        values = self._cached()
        up = GaugeMetricFamily(
            "remixq_database_up", "Whether the last read of the database's gauges succeeded."
        )
        up.add_metric([], 0 if values is None else 1)
        yield up
        if values is None:
            return
        counts, spend = values
        jobs = GaugeMetricFamily(
            "remixq_jobs", "Jobs by status (every campaign), from the database.", labels=["status"]
        )
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status.value, 0))
        yield jobs
        yield GaugeMetricFamily(
            "remixq_spend_usd", "The cost of every stored image, in USD.", value=float(spend)
        )

    def _cached(self) -> tuple[dict[str, int], Decimal] | None:
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._cache_seconds:
                self._read_at = now
                self._values = self._read()
            return self._values

    def _read(self) -> tuple[dict[str, int], Decimal] | None:
        try:
            with self._engine().connect() as connection:
                counts = {
                    str(status): int(count)
                    for status, count in connection.execute(
                        select(Job.status, func.count()).group_by(Job.status)
                    )
                }
                spend = connection.execute(select(func.coalesce(func.sum(Image.cost), 0)))
                return counts, Decimal(str(spend.scalar_one()))
        except SQLAlchemyError as exc:
            log.warning("metrics: the database's gauges could not be read (%s)", type(exc).__name__)
            return None
