"""The REST API's typed request and response bodies (pydantic): they validate what comes in,
shape what goes out, and are what the OpenAPI document is generated from (spectree)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from remixq.reports import PAGE_MAX
from remixq.states import JobStatus

MAX_JOBS = 10_000  # per request (the body limit, REMIXQ_API_MAX_BODY_BYTES, applies too)
MAX_PAGE = PAGE_MAX // 2  # a page is read as limit + 1 rows, to know whether more follow
DEFAULT_PAGE = 100


class CampaignCreate(BaseModel):
    """A new campaign: Runware requests, each exactly what one line of a JSONL campaign file
    holds (a Runware imageInference request without the delivery fields); or a spec of them,
    as a YAML or JSON spec file holds it: `defaults`, a `matrix` of variants, explicit `jobs`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique among campaigns.")
    jobs: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_JOBS,
        description="Runware imageInference requests, as the lines of a JSONL campaign file; "
        "in a spec, each is merged over `defaults` (objects key by key). At least one job, or "
        "a matrix.",
    )
    defaults: dict[str, Any] | None = Field(
        None, description="A spec's fields every job starts from (matrix and explicit jobs)."
    )
    matrix: dict[str, list[Any]] | None = Field(
        None,
        description="A spec's variants: dotted field path (e.g. "
        "providerSettings.ideogram.stylePreset) -> the values it takes; one job per "
        "combination of every axis's values, set over `defaults`.",
        examples=[{"positivePrompt": ["a tea tin, autumn", "a tea tin, winter"]}],
    )
    budget_usd: str | float | None = Field(
        None,
        description='The most the campaign may spend, in USD: a decimal string ("25.00") or a '
        "number above 0. The jobs' estimates are reserved against it; a request that does not "
        "fit is refused whole (409 budget_exceeded).",
    )
    allow_large: StrictBool = Field(
        False,
        description="Accept a matrix making more jobs than REMIXQ_MAX_MATRIX_JOBS (never more "
        f"than {MAX_JOBS:,} in one request).",
    )


class Campaign(BaseModel):
    """A campaign's state: jobs by status (latest attempts), images and cost so far."""

    id: int
    name: str
    counts: dict[str, int] = Field(description="Jobs by status (the latest attempt of each).")
    images: int
    assets: dict[str, int] = Field(
        default_factory=dict,
        description="The images' durable copies by status (pending, stored, failed, refused).",
    )
    cost_usd: str = Field(description='Exact decimal string, e.g. "0.1234".')
    created_at: datetime
    finished_at: datetime | None = None
    paused: bool
    pause_reason: str | None = None
    cancelled_at: datetime | None = None
    api_key: str | None = Field(None, description="Name of the API key that created it.")
    paused_by: str | None = Field(None, description='"account", "user" or "budget".')
    budget_usd: str | None = Field(None, description="The budget (USD); null: none.")
    estimated_usd: str = Field("0.00", description="The estimates of every job (every attempt).")
    reserved_usd: str = Field(
        "0.00", description="What open jobs may still cost: their estimates less what they cost."
    )
    spent_usd: str = Field("0.00", description="What the images cost (as cost_usd).")
    overrun_usd: str = Field("0.00", description="What jobs cost beyond their estimates.")
    budget_left_usd: str | None = Field(
        None, description="Budget less spent and reserved (negative after an overrun)."
    )


class CampaignPage(BaseModel):
    items: list[Campaign]
    next_cursor: str | None = None


class JobError(BaseModel):
    code: str | None = None
    message: str | None = None


class Job(BaseModel):
    id: int
    task_uuid: str
    status: JobStatus
    model: str
    results_expected: int
    results_received: int
    attempts: int
    error: JobError | None = None
    retry_of: int | None = Field(None, description="Id of the failed job this one retries.")
    variant: dict[str, Any] | None = Field(
        None,
        description="The axis values of the spec's matrix that made the job (dotted path -> "
        'value), or {"job": i} for the spec\'s explicit job i; null for a plain request.',
    )
    created_at: datetime
    finished_at: datetime | None = None


class JobPage(BaseModel):
    items: list[Job]
    next_cursor: str | None = None


class Image(BaseModel):
    id: int
    image_uuid: str
    image_url: str | None = None
    seed: int | None = None
    nsfw: bool | None = None
    cost_usd: str | None = None
    job_id: int
    task_uuid: str
    created_at: datetime
    asset_status: str = Field(
        "pending",
        description='Its durable copy: "pending" (not made yet, or being retried), "stored",'
        ' "failed" or "refused" (with asset_reason).',
    )
    asset_reason: str | None = Field(
        None, description="Why the copy failed or was refused (or a pending one's last failure)."
    )
    sha256: str | None = Field(None, description="SHA-256 (hex) of the stored bytes.")
    size_bytes: int | None = None
    content_type: str | None = Field(None, description="Of the decoded image, e.g. image/jpeg.")
    width: int | None = None
    height: int | None = None
    content_url: str | None = Field(
        None, description="Where the stored bytes are served (null until stored)."
    )


class ContentQuery(BaseModel):
    """`size`: a thumbnail whose longest side is at most this many pixels (made once, kept)."""

    size: int | None = Field(None, ge=64, le=1024)


class ImagePage(BaseModel):
    items: list[Image]
    next_cursor: str | None = None


class Page(BaseModel):
    """Cursor pagination: `cursor` is a page's `next_cursor`, opaque."""

    limit: int = Field(DEFAULT_PAGE, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(None, max_length=100)


class JobQuery(Page):
    status: JobStatus | None = Field(None, description="Only jobs with this status.")


class ControlResult(BaseModel):
    """What a control did: the campaign after it, and how many jobs it touched."""

    campaign: Campaign
    jobs: int = Field(description="Jobs cancelled, held, handed over again or retried.")
    enqueued: bool = Field(True, description="False when the broker could not take them yet.")
    broker_error: str | None = None


class FieldProblem(BaseModel):
    field: str
    value: Any = None
    allowed: str
    location: str | None = Field(None, description='e.g. "job 3" for jobs[3].')


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, e.g. unauthorized, forbidden, not_found, invalid_input.")
    message: str
    errors: list[FieldProblem] | None = None
    campaign_id: int | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class CreateHeaders(BaseModel):
    """The optional header of a create: a retry with the same key and body gets the campaign
    the first request made (200); with another body, 409 idempotency_key_reused."""

    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: str | None = Field(None, alias="Idempotency-Key", min_length=1, max_length=200)
