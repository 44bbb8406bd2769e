"""The REST API's typed request and response bodies (pydantic): they validate what comes in,
shape what goes out, and are what the OpenAPI document is generated from (spectree)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from remixq.reports import PAGE_MAX
from remixq.states import JobStatus

MAX_JOBS = 10_000  # per request (the body limit, REMIXQ_API_MAX_BODY_BYTES, applies too)
MAX_PAGE = PAGE_MAX // 2  # a page is read as limit + 1 rows, to know whether more follow
DEFAULT_PAGE = 100


class JobsBody(BaseModel):
    """Requests, each exactly what one line of a JSONL campaign file holds (a Runware
    imageInference request without the delivery fields, or, with `"provider": "ideogram"`, a
    request of Ideogram's own Remix API in its field names); or a spec of them, as a YAML or
    JSON spec file holds it: `defaults`, a `matrix` of variants, explicit `jobs`."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_JOBS,
        description="Requests, as the lines of a JSONL campaign file: Runware imageInference "
        'requests, or Ideogram Remix requests with "provider": "ideogram"; in a spec, each is '
        "merged over `defaults` (objects key by key). At least one job, or a matrix.",
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


class CampaignCreate(JobsBody):
    """A new campaign: Runware requests, each exactly what one line of a JSONL campaign file
    holds (a Runware imageInference request without the delivery fields); or a spec of them,
    as a YAML or JSON spec file holds it: `defaults`, a `matrix` of variants, explicit `jobs`."""

    name: str = Field(min_length=1, max_length=200, description="Unique among campaigns.")
    failover: str | None = Field(
        None,
        description='"ideogram": a Runware ideogram:4@2 job that fails on Runware\'s side is '
        "re-run through Ideogram's own API, once getResponse confirms Runware has no result "
        'for it (README "Failover"); null or "off" (the default): it stays failed.',
    )


class EstimateRequest(JobsBody):
    """What a campaign would cost: the body of a create (its name may be left out), validated
    and expanded the same way; nothing is stored."""

    name: str | None = Field(
        None, min_length=1, max_length=200, description="Optional: nothing is named or stored."
    )
    budget_usd: str | float | None = Field(
        None, description="Checked as a create checks it; the estimate does not depend on it."
    )


class JobsAdd(JobsBody):
    """More jobs for an existing campaign: Runware requests or a spec of them, as a create
    holds them, without a name (the campaign is the one in the path)."""

    budget_usd: str | float | None = Field(
        None,
        description='The campaign\'s budget, in USD ("30.00"): it must be the budget the '
        "campaign has (one that differs is refused whole, 409 budget_conflict: PATCH changes a "
        "budget); left out, the same. The new jobs' estimates are reserved against it: what "
        "does not fit is refused whole (409 budget_exceeded).",
    )


class BudgetChange(BaseModel):
    """A campaign's new budget (`{"budget_usd": "30.00"}`, or null for no budget) and/or its
    failover (`{"failover": "ideogram"}`, or null / "off"): at least one of them."""

    model_config = ConfigDict(extra="forbid")

    budget_usd: str | float | None = Field(
        None,
        description='USD, a decimal string ("30.00") or a number above 0; null: no budget. '
        "Never below what the campaign has reserved and spent already (409 budget_exceeded).",
    )
    failover: str | None = Field(
        None,
        description='"ideogram" turns failover on, null or "off" turns it off (README '
        '"Failover"); left out, the campaign keeps its own.',
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
    failover: str | None = Field(
        None, description='The failover provider ("ideogram"); null: failover is off.'
    )
    estimated_usd: str = Field("0.00", description="The estimates of every job (every attempt).")
    reserved_usd: str = Field(
        "0.00", description="What open jobs may still cost: their estimates less what they cost."
    )
    spent_usd: str = Field("0.00", description="What the images cost (as cost_usd).")
    overrun_usd: str = Field("0.00", description="What jobs cost beyond their estimates.")
    spent_estimated_usd: str = Field(
        "0.00",
        description="The part of spent_usd that is the price table's estimate: the costs of a"
        " provider whose answers carry none (Ideogram's own API).",
    )
    budget_left_usd: str | None = Field(
        None, description="Budget less spent and reserved (negative after an overrun)."
    )


class CampaignPage(BaseModel):
    items: list[Campaign]
    next_cursor: str | None = None


class JobsAdded(BaseModel):
    """Jobs added to a campaign: the campaign after it, and how many jobs were added."""

    campaign: Campaign
    jobs: int = Field(description="Jobs added (by the first request, on a replay).")
    enqueued: bool = Field(True, description="False when the broker could not take them yet.")
    broker_error: str | None = None


class Tally(BaseModel):
    jobs: int
    images: int
    estimated_cost_usd: str = Field(description='Exact decimal string, e.g. "0.54".')


class VariantTally(Tally):
    variant: dict[str, Any] | None = Field(
        description='A spec\'s axis values (dotted path -> value), {"job": i} for its explicit '
        "job i, null for a plain request."
    )


class Estimate(BaseModel):
    """What the jobs should cost by the price table (REMIXQ_PRICE_TABLE): the same document
    as `remixq submit FILE --dry-run --json`, without `price_table`."""

    jobs: int
    images: int
    estimated_cost_usd: str = Field(description='Exact decimal string, e.g. "0.54".')
    by_model: dict[str, Tally] = Field(description="Per model id.")
    by_variant: list[VariantTally] = Field(description="Per variant, in order of appearance.")


# remixq.budgets.COST_GROUPS, spelled for the document (a test holds them equal).
CostBy = Literal["campaign", "model", "day", "variant"]


class CostQuery(BaseModel):
    by: CostBy = Field(
        "campaign",
        description="Group by campaign, model, UTC day (jobs on the day stored, images on the "
        "day they came) or variant (a spec's axis values; null for plain requests).",
    )
    campaign: int | None = Field(
        None, ge=1, le=2**63 - 1, description="Only this campaign (its id); default: all."
    )


class Spend(BaseModel):
    jobs: int = Field(description="Every attempt.")
    images: int
    estimated_usd: str = Field(description="The price table's estimates of the jobs.")
    reserved_usd: str = Field(description="What open jobs may still cost.")
    spent_usd: str = Field(
        description="What the images cost (the provider's reported costs, and the price table's"
        " for a provider that reports none: spent_estimated_usd)."
    )
    overrun_usd: str = Field(description="What jobs cost beyond their estimates.")
    spent_estimated_usd: str = Field(
        "0.00", description="The part of spent_usd that is the price table's estimate."
    )


class CostRow(Spend):
    key: Any = Field(
        description="The group: a campaign's name, a model id, a UTC day (YYYY-MM-DD), or a "
        "variant (an object; null for plain requests)."
    )
    campaign_id: int | None = Field(None, description="By campaign: the campaign's id.")


class CostReport(BaseModel):
    """Estimated, reserved, spent and overrun USD per group and in all: the same document as
    `remixq costs --json` (`campaign` is the id asked for)."""

    by: CostBy
    campaign: int | None = None
    rows: list[CostRow]
    total: Spend


class JobError(BaseModel):
    code: str | None = None
    message: str | None = None


class Job(BaseModel):
    id: int
    task_uuid: str
    status: JobStatus
    provider: str = Field("runware", description='"runware" or "ideogram" (its own API).')
    model: str
    results_expected: int
    results_received: int
    attempts: int
    lost_answers: int = Field(
        0,
        description="Synchronous calls whose answer was lost: each may have been charged"
        " (error code possiblyCharged).",
    )
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
    cost_estimated: bool = Field(
        False,
        description="cost_usd is the price table's estimate (the provider reports no cost).",
    )
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


# -- schedules --------------------------------------------------------------------------------


class ScheduleFile(BaseModel):
    """A campaign file's text, as `remixq schedule add --file` stores it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=255,
        description="The file's name: its suffix is its format (.jsonl, .ndjson, .csv, or a "
        ".yaml, .yml or .json spec).",
        examples=["tins.yaml"],
    )
    content: str = Field(description="The file's text (at most 16 MiB).")


_SPEC = (
    "A spec as POST /campaigns takes it (`defaults`, `matrix`, `jobs`, `budget_usd`), stored as "
    "JSON; give `spec` or `file`."
)
_FILE = "A campaign file's name and text; give `spec` or `file`."
_CRON = 'Cron expression of five fields (e.g. "0 9 * * MON") or @daily, @hourly...'
_TIMEZONE = "IANA time zone the expression is read in (daylight-saving changes handled)."
_CATCH_UP = (
    "Missed occurrences (no beat ran at their time): skip, latest (fire the most recent) or "
    "all (up to catch_up_max)."
)
_CATCH_UP_MAX = "The most missed occurrences `all` fires (1-1000)."
_BUDGET = (
    "Each occurrence's campaign's budget in USD (a decimal string or number); default: the "
    "spec's budget_usd, if any."
)


class ScheduleCreate(BaseModel):
    """A new schedule: each occurrence of `cron` in `timezone` makes one campaign from the
    stored spec or file, named NAME@<occurrence time>."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Letters, digits, . _ -")
    cron: str = Field(min_length=1, max_length=200, description=_CRON)
    timezone: str = Field("UTC", max_length=64, description=_TIMEZONE)
    catch_up: str = Field("latest", max_length=10, description=_CATCH_UP)
    catch_up_max: int | None = Field(None, description=_CATCH_UP_MAX)
    budget_usd: str | float | None = Field(None, description=_BUDGET)
    spec: dict[str, Any] | None = Field(None, description=_SPEC)
    file: ScheduleFile | None = Field(None, description=_FILE)


class ScheduleUpdate(BaseModel):
    """What changes (the rest stays): checked whole as a create is; a new cron or time zone
    starts again from the first occurrence after now. `budget_usd: null` removes the budget."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(None, min_length=1, max_length=200, description=_CRON)
    timezone: str | None = Field(None, max_length=64, description=_TIMEZONE)
    catch_up: str | None = Field(None, max_length=10, description=_CATCH_UP)
    catch_up_max: int | None = Field(None, description=_CATCH_UP_MAX)
    budget_usd: str | float | None = Field(None, description=_BUDGET)
    spec: dict[str, Any] | None = Field(None, description=_SPEC)
    file: ScheduleFile | None = Field(None, description=_FILE)


class Occurrence(BaseModel):
    """One occurrence of a schedule: fired (its campaign, with its status and figures) or
    skipped (and why)."""

    id: int
    occurrence_at: datetime = Field(description="On the schedule's clock, with its offset.")
    occurrence_at_utc: datetime
    status: str = Field(description='"fired" or "skipped".')
    reason: str | None = None
    campaign_id: int | None = None
    campaign: str | None = Field(None, description="The campaign's name, NAME@<time>.")
    campaign_status: str | None = Field(
        None, description="running, completed, failed or cancelled."
    )
    jobs: int | None = None
    images: int | None = None
    cost_usd: str | None = None


class OccurrencePage(BaseModel):
    items: list[Occurrence]
    next_cursor: str | None = None


class Schedule(BaseModel):
    """A schedule: its definition, its next occurrence (null while paused), its last recorded
    one, and how many it fired and skipped."""

    id: int
    name: str
    cron: str
    timezone: str
    catch_up: str
    catch_up_max: int
    budget_usd: str | None = None
    file: str = Field(description="The stored file's name (spec.json for an API spec).")
    paused: bool
    paused_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    next_occurrence_at: datetime | None = None
    last_fired_at: datetime | None = None
    last_occurrence: Occurrence | None = None
    fired: int
    skipped: int


class SchedulePage(BaseModel):
    items: list[Schedule]
    next_cursor: str | None = None


class ScheduleRun(BaseModel):
    """The occurrence `run` fired now, its campaign, and whether its jobs reached the broker."""

    schedule: Schedule
    occurrence: Occurrence
    enqueued: bool = True
    broker_error: str | None = None


class ScheduleRemoved(BaseModel):
    name: str
    removed: bool = True
    occurrences: int = Field(description="How many occurrences its history held.")
