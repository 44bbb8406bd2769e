"""The stored state of remixq: campaigns, jobs, images, the raw webhook inbox, the API's keys
and idempotency keys, and the schedules that make campaigns with their occurrences.

Money is `Numeric`, never float; every timestamp is timezone-aware. Campaign and job totals are
derived from the image rows (a sum), never kept in a row that every webhook would have to update.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from remixq.db import Base, JSONDocument, Money, UTCDateTime, utcnow
from remixq.states import AssetStatus, CatchUp, InboxStatus, JobStatus, OccurrenceStatus, PausedBy

_STATUSES = ", ".join(f"'{s.value}'" for s in JobStatus)
_INBOX_STATUSES = ", ".join(f"'{s.value}'" for s in InboxStatus)
# A JSON document whose None is SQL NULL (JSONDocument stores None as the JSON null).
NULLABLE_JSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
_PAUSERS = ", ".join(f"'{s.value}'" for s in PausedBy)
_CATCH_UPS = ", ".join(f"'{s.value}'" for s in CatchUp)
_OCCURRENCE_STATUSES = ", ".join(f"'{s.value}'" for s in OccurrenceStatus)
_ASSET_STATUSES = ", ".join(f"'{s.value}'" for s in AssetStatus)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (CheckConstraint(f"paused_by IN ({_PAUSERS})", name="paused_by"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str | None] = mapped_column(Text)
    # SHA-256 (hex) of the file that created the campaign, so that submitting the same content
    # again is recognised; unique, so that two producers racing with one file make one campaign.
    # A copy asked for explicitly (`submit --again`) and a campaign extended by another file keep
    # no digest of their own.
    content_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the provider refused the account (401/402/403; `paused_by` "account": its jobs
    # wait, pending, until `remixq resume` or the account probe lifts the pause; the reason is the
    # provider's words), or when a person or a program paused it (`paused_by` "user": only a
    # resume naming it lifts it).
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    paused_by: Mapped[str | None] = mapped_column(String(20))
    # When the campaign was first cancelled: its unsubmitted jobs were cancelled then.
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The API key that created the campaign over HTTP (None: the command line).
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="RESTRICT"), index=True
    )

    # The most the campaign may spend, in USD (None: no budget).
    budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    # The schedule whose occurrence made it (None: submitted, or its schedule was removed).
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL"), index=True
    )
    # The provider a Runware `ideogram:4@2` job that failed on Runware's side is re-run
    # through (remixq.failover): "ideogram", or None (off, the default).
    failover: Mapped[str | None] = mapped_column(String(20))

    jobs: Mapped[list[Job]] = relationship(back_populates="campaign")
    api_key: Mapped[ApiKey | None] = relationship()


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("number_results BETWEEN 1 AND 20", name="number_results"),
        CheckConstraint("results_received >= 0", name="results_received"),
        Index("ix_jobs_status_updated_at", "status", "updated_at"),
        Index("ix_jobs_status_next_check_at", "status", "next_check_at"),
        # Keyset pages of a campaign's jobs (all, or of one status), and its export.
        Index("ix_jobs_campaign_id_id", "campaign_id", "id"),
        Index("ix_jobs_campaign_id_status_id", "campaign_id", "status", "id"),
        # The retries alone: `retry_of_id = <id>` implies it (a job's retry, the superseded).
        Index(
            "ix_jobs_retry_of_id",
            "retry_of_id",
            postgresql_where=text("retry_of_id IS NOT NULL"),
            sqlite_where=text("retry_of_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # Looked up through ix_jobs_campaign_id_id (its first column): no index of its own.
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="RESTRICT"))
    # Chosen before the first submission and reused on every retry: the provider answers a
    # second submission with conflictTaskUUID instead of generating (and charging) twice.
    task_uuid: Mapped[str] = mapped_column(Uuid(as_uuid=False), unique=True)
    provider: Mapped[str] = mapped_column(String(20), default="runware")
    model: Mapped[str] = mapped_column(String(50))
    request: Mapped[dict[str, Any]] = mapped_column(JSONDocument)  # the exact task sent
    number_results: Mapped[int] = mapped_column(Integer)
    results_received: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default=JobStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    retry_of_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # polls so far
    # A synchronous provider's call (remixq.native): when the current claim's call was sent,
    # committed before sending (NULL: none in flight), and how many calls lost their answer,
    # each of which may have been charged (the provider has no idempotency key).
    call_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lost_answers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Deliveries for this job applied without their body kept: its inbox was full
    # (REMIXQ_INBOX_MAX_PER_TASK rows), so one leaked webhook URL cannot fill the disk.
    inbox_overflow: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What the job should cost (USD, the price table's), reserved against its campaign's budget
    # when the job was stored; None for jobs stored before estimates were (`remixq.budgets`).
    estimated_cost: Mapped[Decimal | None] = mapped_column(Money)
    # The variant of a spec file's job: the matrix's axis values that produced it (dotted path
    # -> value), merged with its explicit job's own ({"job": index}); None for a plain request.
    variant: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)
    # Failover (remixq.failover), on the failed Runware job: "failed_over" (a linked job,
    # `retry_of_id` naming this one, re-runs it through the campaign's failover provider; this
    # job's cost no longer counts in the budget), "refused" (no equivalent request) or
    # "runware_has_it" (getResponse had results or work in progress); `failover_reason` says
    # why. None: not considered (yet).
    failover_state: Mapped[str | None] = mapped_column(String(20))
    failover_reason: Mapped[str | None] = mapped_column(Text)

    campaign: Mapped[Campaign | None] = relationship(back_populates="jobs")
    images: Mapped[list[Image]] = relationship(back_populates="job", order_by="Image.id")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        CheckConstraint(f"asset_status IN ({_ASSET_STATUSES})", name="asset_status"),
        # The assets still to fetch, for the sweep (remixq.assets.claims): only pending rows.
        Index(
            "ix_images_asset_pending",
            "id",
            postgresql_where=text("asset_status = 'pending'"),
            sqlite_where=text("asset_status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="RESTRICT"), index=True)
    image_uuid: Mapped[str] = mapped_column(Uuid(as_uuid=False), unique=True)
    image_url: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    nsfw: Mapped[bool | None] = mapped_column(Boolean)
    cost: Mapped[Decimal | None] = mapped_column(Money)
    # The result item as received; an inline output's base64 is dropped from it once its bytes
    # are stored as a file (remixq.assets).
    raw: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # The durable copy (remixq.assets). A new row is `pending` by the columns' defaults, so the
    # webhook's statement writes nothing more; the workers fetch, verify and store it.
    asset_status: Mapped[str] = mapped_column(
        String(20), default=AssetStatus.PENDING.value, server_default=AssetStatus.PENDING.value
    )
    asset_reason: Mapped[str | None] = mapped_column(Text)  # why failed or refused, or the last
    # transient failure of a pending one
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the stored bytes (hex)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(String(50))  # of the decoded format
    format: Mapped[str | None] = mapped_column(String(10))  # JPEG | PNG | WEBP, as decoded
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    storage_key: Mapped[str | None] = mapped_column(String(200))  # sha256/ab/cd/<hex>.<ext>
    asset_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the sweep may hand it over again: NULL (new: at once), a retry's backoff, or the
    # end of the current hand-over's lease (a worker that died holding it).
    asset_next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The current hand-over's token: a message whose token is not this one does nothing.
    asset_claim: Mapped[str | None] = mapped_column(String(32))
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    job: Mapped[Job] = relationship(back_populates="images")


class WebhookEvent(Base):
    """The raw inbox: every body received, stored before it is interpreted, kept for replay."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        CheckConstraint(f"status IN ({_INBOX_STATUSES})", name="status"),
        Index("ix_webhook_events_received_at", "received_at"),  # the prune's oldest first
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(20), default="webhook")  # webhook | poll
    # The task the body was received for (its URL's), as the job's column: NULL for none.
    task_uuid: Mapped[str | None] = mapped_column(Uuid(as_uuid=False), index=True)
    status: Mapped[str] = mapped_column(String(20))  # an InboxStatus, written with the row
    body: Mapped[bytes] = mapped_column(LargeBinary)
    error: Mapped[str | None] = mapped_column(Text)


class ApiKey(Base):
    """A key of the REST API: only its SHA-256 is kept (remixq.apikeys says why that suffices),
    found by its public `prefix`; a revoked key stays, so that its campaigns still name it."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """An `Idempotency-Key` an API key sent with a POST (or `remixq submit` was given), and the
    campaign that request made:
    inserted in the campaign's own transaction, unique per API key, so that a retried or
    concurrent request finds the campaign instead of making a second one."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("api_key_id", "key"),
        # The command line's keys (`remixq submit --idempotency-key`) have no API key; a unique
        # constraint takes NULLs as distinct, so their own index keeps them unique.
        Index(
            "uq_idempotency_keys_cli_key",
            "key",
            unique=True,
            postgresql_where=text("api_key_id IS NULL"),
            sqlite_where=text("api_key_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # None: a key of the command line's.
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the request's canonical JSON: the same key with another body is refused.
    request_sha256: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Schedule(Base):
    """A recurring campaign (remixq.schedules): a cron expression read on the wall clock of a
    time zone, the campaign file's content as it was when the schedule was added or updated,
    a budget per occurrence and a policy for the occurrences missed while no beat ran.

    `next_due_at` is the next occurrence not yet recorded (UTC): the firing round looks only at
    schedules whose time has come, and advances it in the transaction that records what it
    did. While paused (`paused_at`), nothing fires; a resume starts again from its own time."""

    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint(f"catch_up IN ({_CATCH_UPS})", name="catch_up"),
        CheckConstraint("catch_up_max >= 1", name="catch_up_max"),
        Index("ix_schedules_next_due_at", "next_due_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))  # an IANA name, e.g. Europe/Berlin
    source: Mapped[str] = mapped_column(Text)  # the campaign file's text, as stored
    source_name: Mapped[str] = mapped_column(String(255))  # its name: the suffix is its format
    budget_usd: Mapped[Decimal | None] = mapped_column(Money)  # each occurrence's campaign's
    catch_up: Mapped[str] = mapped_column(String(10))
    catch_up_max: Mapped[int] = mapped_column(Integer)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # an occurrence's time
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ScheduleOccurrence(Base):
    """One occurrence of a schedule, fired (its campaign) or skipped (and why). Unique per
    (schedule, time): inserted in the transaction that makes the campaign, so two beats, or a
    beat restarted mid-fire, can never make an occurrence's campaign twice."""

    __tablename__ = "schedule_occurrences"
    __table_args__ = (
        UniqueConstraint("schedule_id", "occurrence_at"),
        CheckConstraint(f"status IN ({_OCCURRENCE_STATUSES})", name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    occurrence_at: Mapped[datetime] = mapped_column(UTCDateTime)  # UTC, whole seconds
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
