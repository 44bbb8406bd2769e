"""Budgets: each job's estimate reserved against its campaign's budget, settled by what the
provider reports, and the spend figures the reports show.

The ledger keeps no running total. A job stores its estimate (`jobs.estimated_cost`, the price
table's, `remixq.pricing`) with the job; what it cost is the sum of its images' costs, which
ingestion stores anyway. Every figure is derived from those rows by SQL aggregates:

- a job's reservation is *open* while the provider may still charge for it: it is pending,
  queued, submitting or submitted, or cancelled after a claim (a submission in flight when the
  cancel landed may have been accepted). It is *settled* when the job completes or fails: from
  then on the job counts what its images cost, and its estimate no longer counts;
- `spent`: what the images cost; `reserved`: what open jobs may still cost, each job's estimate
  less what it has cost so far (never below 0); `committed` = spent + reserved;
- `overrun`: over every job, what it cost beyond its estimate.

Settlement is thus lazy: the webhook's statement (remixq.ingest) stays as it was, and moving a
job to a final status settles it. Nothing can drift, and there is no hot row every webhook of a
campaign would have to update.

Producers reserve under a lock on the campaign's row (`reserve`: `SELECT ... FOR NO KEY UPDATE`
on PostgreSQL, which serialises them without blocking the foreign-key checks of other inserts;
SQLite's writers are serialised by `BEGIN IMMEDIATE`, remixq.db), taken before their jobs are
inserted; under it `committed` is read in a fresh snapshot (READ COMMITTED), so it includes
every job another producer committed, and the new estimates are refused whole unless
committed + asked <= budget. Ingestion takes no such lock: a settlement only turns an open
reservation into spend, or lowers it (a job that cost less, or failed), except for an overrun,
which no lock could prevent (the provider charged it). When overruns push `committed` past the
budget, the claim (remixq.jobs.claim) pauses the campaign (`paused_by` "budget") before it
submits any more of its jobs, so that actual spend stops before it could pass the budget.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from remixq.db import MONEY_SCALE, Money
from remixq.errors import FieldError, InvalidInput
from remixq.models import Campaign, Image, Job
from remixq.provider_kinds import estimated_cost_providers
from remixq.states import OPEN, JobStatus

_jobs = Job.metadata.tables[Job.__tablename__]
_campaigns = Campaign.metadata.tables[Campaign.__tablename__]
_images = Image.metadata.tables[Image.__tablename__]

ZERO = Decimal(0)
_OPEN = sorted(status.value for status in OPEN)
FAILED_OVER = "failed_over"  # jobs.failover_state of a job re-run elsewhere (remixq.failover)


def usd(value: Decimal | None) -> str:
    """A USD amount as an exact decimal string, at least to the cent (`remixq.reports.money`)."""
    value = value or ZERO
    text = format(value.normalize(), "f")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


@dataclass(frozen=True)
class Spend:
    """Estimated, reserved, spent and overrun USD of a set of jobs (a campaign, a model...)."""

    jobs: int = 0
    images: int = 0
    estimated: Decimal = ZERO
    reserved: Decimal = ZERO
    spent: Decimal = ZERO
    overrun: Decimal = ZERO
    # The part of `spent` that is the price table's estimate, not a cost the provider reported
    # (remixq.provider_kinds: Ideogram's own API returns none).
    spent_estimated: Decimal = ZERO

    @property
    def committed(self) -> Decimal:
        """What the jobs have cost plus what their open reservations may still cost."""
        return self.spent + self.reserved

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            self.jobs + other.jobs,
            self.images + other.images,
            self.estimated + other.estimated,
            self.reserved + other.reserved,
            self.spent + other.spent,
            self.overrun + other.overrun,
            self.spent_estimated + other.spent_estimated,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "images": self.images,
            "estimated_usd": usd(self.estimated),
            "reserved_usd": usd(self.reserved),
            "spent_usd": usd(self.spent),
            "overrun_usd": usd(self.overrun),
            "spent_estimated_usd": usd(self.spent_estimated),
        }


def _estimated(actual: ColumnElement[Any]) -> ColumnElement[Any]:
    """`actual` when the job's provider reports no cost (its costs are the price table's)."""
    return case(
        (_jobs.c.provider.in_(sorted(estimated_cost_providers())), actual),
        else_=literal(ZERO, Money),
    )


def _money(value: Any) -> ColumnElement[Decimal]:
    """An expression read back as Money (exact Decimal on both backends)."""
    return type_coerce(value, Money)


def _still_open() -> ColumnElement[bool]:
    """The job's reservation is open: the provider may still charge for it."""
    return or_(
        _jobs.c.status.in_(_OPEN),
        and_(_jobs.c.status == JobStatus.CANCELLED.value, _jobs.c.attempts > 0),
    )


def spend(
    session: Session,
    *,
    where: ColumnElement[bool],
    key: ColumnElement[Any] | None = None,
) -> dict[Hashable, Spend]:
    """The `Spend` of the jobs `where` selects (a condition on the jobs table), grouped by `key`
    (an expression over the jobs table; None: one group, keyed None). One statement: the
    images' costs summed per job, then the per-job figures summed per group."""
    zero = literal(ZERO, Money)
    per_job = (
        select(
            _images.c.job_id,
            func.sum(_images.c.cost).label("actual"),
            func.count(_images.c.id).label("images"),
        )
        .join(_jobs, _jobs.c.id == _images.c.job_id)
        .where(where)
        .group_by(_images.c.job_id)
        .subquery()
    )
    estimate = func.coalesce(_jobs.c.estimated_cost, zero)
    # A job that failed over (remixq.failover) is paid through its linked job: a late result
    # of its own is recorded, not counted twice.
    actual = _money(
        case(
            (_jobs.c.failover_state == FAILED_OVER, zero),
            else_=func.coalesce(per_job.c.actual, zero),
        )
    )
    reserved = case((and_(_still_open(), estimate > actual), estimate - actual), else_=zero)
    overrun = case(
        (and_(_jobs.c.estimated_cost.is_not(None), actual > estimate), actual - estimate),
        else_=zero,
    )
    group = (key if key is not None else literal(None)).label("key")
    query = (
        select(
            group,
            func.count(_jobs.c.id),
            func.coalesce(func.sum(per_job.c.images), 0),
            _money(func.coalesce(func.sum(estimate), zero)),
            _money(func.coalesce(func.sum(reserved), zero)),
            _money(func.coalesce(func.sum(actual), zero)),
            _money(func.coalesce(func.sum(overrun), zero)),
            _money(func.coalesce(func.sum(_estimated(actual)), zero)),
        )
        .select_from(_jobs.outerjoin(per_job, per_job.c.job_id == _jobs.c.id))
        .where(where)
    )
    if key is not None:
        query = query.group_by(key)
    rows = session.execute(query).all()
    if key is None and rows and not rows[0][1]:
        return {}  # no job: an aggregate without GROUP BY still answers one row
    return {group_key(row[0]): Spend(int(row[1]), int(row[2]), *row[3:8]) for row in rows}


def group_key(value: Any) -> Hashable:
    """A group's key as a dict key (a variant is a JSON object)."""
    if isinstance(value, dict):
        return tuple(sorted((k, group_key(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(group_key(v) for v in value)
    return value  # type: ignore[no-any-return]


def campaign_spend(session: Session, campaign_ids: Iterable[int]) -> dict[int, Spend]:
    """Each campaign's `Spend` (every attempt of every job); a campaign without jobs has none."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    found = spend(session, where=_jobs.c.campaign_id.in_(ids), key=_jobs.c.campaign_id)
    return {int(k): v for k, v in found.items() if isinstance(k, int)}


@dataclass(frozen=True)
class BudgetState:
    """A campaign's budget (None: none) and its spend, read under its row lock."""

    campaign_id: int
    name: str
    budget: Decimal | None
    spend: Spend = field(default_factory=Spend)

    @property
    def left(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.spend.committed


class BudgetExceeded(InvalidInput):
    """A submission whose estimates do not fit in what is left of its campaign's budget (or a
    budget set below what is committed already): refused whole, nothing stored. The API
    answers 409 `budget_exceeded`; the CLI prints the one line."""

    code = "budget_exceeded"

    def __init__(self, state: BudgetState, asked: Decimal, *, new_budget: bool = False):
        self.state, self.asked = state, asked
        budget, spent = state.budget or ZERO, state.spend
        figures = (
            f"campaign {state.name!r}'s budget is {usd(budget)} USD, with"
            f" {usd(spent.reserved)} reserved and {usd(spent.spent)} spent"
        )
        if new_budget:
            error = FieldError(
                "budget_usd",
                usd(budget),
                f"at least the {usd(spent.committed)} USD reserved and spent already"
                f" ({usd(spent.reserved)} reserved, {usd(spent.spent)} spent)",
            )
        else:
            error = FieldError(
                "estimated_cost_usd",
                usd(asked),
                f"at most the {usd(max(budget - spent.committed, ZERO))} USD left: {figures};"
                " the submission was refused whole",
            )
        super().__init__([error])

    def detail(self) -> dict[str, str]:
        """The figures, for an API error body."""
        return {
            "budget_usd": usd(self.state.budget),
            "reserved_usd": usd(self.state.spend.reserved),
            "spent_usd": usd(self.state.spend.spent),
            "asked_usd": usd(self.asked),
        }


class Keep:
    """`reserve`'s default: the campaign's budget stays as it is."""


KEEP = Keep()


@dataclass(frozen=True)
class Carried:
    """A budget that came with the jobs (a spec file's or an API body's `budget_usd`): the
    budget of the campaign they make, but never a change to an existing campaign's, which only
    an explicit request makes (`remixq budget`, `submit --budget`, the API's PATCH). `reserve`
    refuses one that is not the campaign's budget (BudgetConflict)."""

    amount: Decimal


class BudgetConflict(InvalidInput):
    """Jobs carrying a budget (`Carried`) that is not their existing campaign's: refused whole,
    nothing stored, so that a spec meant for another campaign cannot raise (or lower) a budget
    by accident. `change` says what does change a budget, as the edge that raised it spells it
    (`explained`). The API answers 409 `budget_conflict`; the CLI prints the one line."""

    code = "budget_conflict"

    def __init__(self, state: BudgetState, given: Decimal, *, change: str = ""):
        self.state, self.given = state, given
        current = (
            f"none: campaign {state.name!r} has no budget"
            if state.budget is None
            else f"campaign {state.name!r}'s budget, {usd(state.budget)} USD"
        )
        how = change or "setting the budget itself (remixq budget, the API's PATCH)"
        super().__init__(
            [
                FieldError(
                    "budget_usd",
                    usd(given),
                    f"{current}: a budget_usd given with jobs never changes an existing"
                    f" campaign's budget; {how} changes it; nothing was stored",
                )
            ]
        )

    def explained(self, change: str) -> BudgetConflict:
        """The same refusal, saying that `change` (a command, a request) changes a budget."""
        return BudgetConflict(self.state, self.given, change=change)

    def detail(self) -> dict[str, str | None]:
        """The figures, for an API error body."""
        return {
            "budget_usd": None if self.state.budget is None else usd(self.state.budget),
            "given_budget_usd": usd(self.given),
        }


def lock(session: Session, campaign_id: int) -> BudgetState:
    """Lock the campaign's row against other producers (until the transaction ends) and read
    its budget and spend: the spend in a snapshot taken after the lock was granted."""
    row = session.execute(
        select(_campaigns.c.name, _campaigns.c.budget_usd)
        .where(_campaigns.c.id == campaign_id)
        .with_for_update(key_share=True)  # FOR NO KEY UPDATE
    ).one()
    budget = None if row.budget_usd is None else Decimal(row.budget_usd)
    spent = Spend()
    if budget is not None:
        spent = campaign_spend(session, [campaign_id]).get(campaign_id, Spend())
    return BudgetState(campaign_id, row.name, budget, spent)


def reserve(
    session: Session,
    *,
    campaign_id: int,
    asked: Decimal,
    budget: Decimal | Keep | Carried | None = KEEP,
) -> BudgetState:
    """Reserve `asked` USD (the estimates of jobs about to be inserted, in this transaction)
    against the campaign's budget, setting the budget first when `budget` is given (None: no
    budget). Call it before inserting the jobs: the lock is what makes concurrent producers
    take turns. Raises BudgetExceeded when committed + asked would pass the budget, or when a
    new budget is below what is committed already; BudgetConflict when a `Carried` budget is
    not the campaign's (read under the lock, so a concurrent change is seen)."""
    state = lock(session, campaign_id)
    if isinstance(budget, Carried):
        if budget.amount != state.budget:
            raise BudgetConflict(state, budget.amount)
        budget = KEEP
    if not isinstance(budget, Keep) and budget != state.budget:
        session.execute(
            update(_campaigns).where(_campaigns.c.id == campaign_id).values(budget_usd=budget)
        )
        if budget is not None and state.budget is None:
            # The spend was not read without a budget to hold it against.
            state = lock(session, campaign_id)
        state = BudgetState(state.campaign_id, state.name, budget, state.spend)
        if budget is not None and state.spend.committed > budget:
            raise BudgetExceeded(state, asked, new_budget=True)
    if state.budget is not None and state.spend.committed + asked > state.budget:
        raise BudgetExceeded(state, asked)
    return state


MAX_BUDGET = Decimal(100_000_000)  # the ledger's Money column holds less than this


def parse_amount(value: object) -> Decimal | None:
    """A USD amount (a price, a budget) from a string or a number, exact; None for anything
    else (bools, NaN, negatives, more decimal places than the ledger keeps...)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    try:
        # A float by its shortest repr: 0.07 is 7 cents, not 0.07000000000000000666...
        amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_SCALE:
        return None
    return amount


def check_budget(value: Any, field_name: str = "budget_usd") -> Decimal:
    """A budget as given (a decimal string or a number): exact Decimal above 0, or InvalidInput
    naming the field (`submit --budget`, `remixq budget`, a spec's and the API's
    `budget_usd`)."""
    budget = parse_amount(value)
    if budget is None or budget <= 0 or budget >= MAX_BUDGET:
        raise InvalidInput(
            [
                FieldError(
                    field_name,
                    value,
                    "an amount in USD: a number or a decimal string above 0 and below"
                    " 100,000,000, with at most 10 decimal places",
                )
            ]
        )
    return budget


@dataclass(frozen=True)
class Overspent:
    """A campaign whose spend plus open reservations passed its budget: what the claim
    pauses, and why (`reason`)."""

    campaign_id: int
    reason: str


# Built once: every claim of a batch of jobs runs it (worker.tasks), and building the statement
# cost more in process than running it (docs/benchmarks.md, the submission profile).
_BUDGETED_OF_JOBS = (
    select(_campaigns.c.id, _campaigns.c.name, _campaigns.c.budget_usd)
    .where(
        _campaigns.c.id.in_(
            select(_jobs.c.campaign_id).where(_jobs.c.id.in_(bindparam("job_ids", expanding=True)))
        ),
        _campaigns.c.budget_usd.is_not(None),
        _campaigns.c.paused_at.is_(None),
    )
    .order_by(_campaigns.c.id)
)


def overspent(session: Session, *, job_ids: Iterable[int]) -> list[Overspent]:
    """The campaigns of these jobs (running, with a budget) whose committed spend is past their
    budget: an estimate was overrun, and submitting more could spend past the budget. A cheap
    lookup by the jobs' ids first: campaigns without a budget cost nothing more."""
    budgeted = session.execute(_BUDGETED_OF_JOBS, {"job_ids": list(job_ids)}).all()
    if not budgeted:
        return []
    spends = campaign_spend(session, [row.id for row in budgeted])
    over = []
    for row in budgeted:
        budget = Decimal(row.budget_usd)
        figures = spends.get(row.id, Spend())
        if figures.committed > budget:
            over.append(
                Overspent(
                    row.id,
                    f"budget: campaign {row.name!r} has spent {usd(figures.spent)} USD and its"
                    f" open jobs reserve {usd(figures.reserved)} more, past its budget of"
                    f" {usd(budget)} USD (estimates overrun by {usd(figures.overrun)});"
                    f" raise it with `remixq budget {row.name} USD` or cancel the campaign",
                )
            )
    return over


COST_GROUPS = ("campaign", "model", "day", "variant")


@dataclass(frozen=True)
class CostRow:
    """One group of a cost report: its key (a campaign id, a model, a day, a variant) and its
    figures."""

    key: Any
    spend: Spend


def _day(column: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC day of a timestamp column, as the database computes it."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)  # SQLite keeps UTC without a zone (remixq.db)


def cost_report(
    session: Session, *, by: str = "campaign", campaign_id: int | None = None
) -> list[CostRow]:
    """Estimated, reserved, spent and overrun USD by campaign, model, day or variant, of one
    campaign or of all: SQL aggregates (one row per group is all that is held). By day, the
    jobs and their estimates, reservations and overruns count on the day the job was stored,
    the images and what they cost on the day the image was."""
    if by not in COST_GROUPS:
        raise InvalidInput([FieldError("--by", by, "one of " + ", ".join(COST_GROUPS))])
    where: ColumnElement[bool] = (
        _jobs.c.campaign_id.is_not(None)
        if campaign_id is None
        else _jobs.c.campaign_id == campaign_id
    )
    dialect = session.get_bind().dialect.name
    keys: dict[str, ColumnElement[Any]] = {
        "campaign": _jobs.c.campaign_id,
        "model": _jobs.c.model,
        "day": _day(_jobs.c.created_at, dialect),
        "variant": _jobs.c.variant,
    }
    found = spend(session, where=where, key=keys[by])
    if by == "day":
        found = _spent_by_image_day(session, where, dialect, found)
    originals = {}
    if by == "variant":
        originals = _variants(session, where)
    rows = [CostRow(originals.get(key, key), figures) for key, figures in found.items()]
    return sorted(rows, key=lambda row: _sort_key(row.key))


def _spent_by_image_day(
    session: Session, where: ColumnElement[bool], dialect: str, by_job_day: dict[Hashable, Spend]
) -> dict[Hashable, Spend]:
    day = _day(_images.c.created_at, dialect).label("day")
    spent = session.execute(
        select(
            day,
            func.count(_images.c.id),
            _money(func.sum(_images.c.cost)),
            _money(func.sum(_estimated(_images.c.cost))),
        )
        .join(_jobs, _jobs.c.id == _images.c.job_id)
        .where(where, or_(_jobs.c.failover_state.is_(None), _jobs.c.failover_state != FAILED_OVER))
        .group_by(day)
    ).all()
    out = {
        key: Spend(f.jobs, 0, f.estimated, f.reserved, ZERO, f.overrun)
        for key, f in by_job_day.items()
    }
    for key, images, cost, estimated in spent:
        base = out.get(key, Spend())
        out[key] = Spend(
            base.jobs,
            int(images),
            base.estimated,
            base.reserved,
            cost or ZERO,
            base.overrun,
            estimated or ZERO,
        )
    return out


def _variants(session: Session, where: ColumnElement[bool]) -> dict[Hashable, Any]:
    """The variants as stored (JSON objects), by their hashable form."""
    rows = session.execute(select(_jobs.c.variant).where(where).distinct()).scalars()
    return {group_key(variant): variant for variant in rows}


def _sort_key(key: Any) -> tuple[int, str]:
    if key is None:
        return (0, "")
    if isinstance(key, int):
        return (1, f"{key:020d}")
    return (1, key if isinstance(key, str) else repr(key))
