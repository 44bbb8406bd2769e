"""Budgets on both backends: estimates reserved under the campaign's lock and refused whole when
they do not fit, settled by the images' costs (the real ingestion), overruns recorded and held
at the claim, retries reserving again."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from remixq import budgets, jobs, producing
from remixq.budgets import BudgetExceeded
from remixq.examples import campaign_lines
from remixq.ingest import ingest
from remixq.models import Campaign, Job
from remixq.pricing import PriceTable
from remixq.providers.runware import parse_request
from remixq.reports import campaign_summary

PRICE = Decimal("0.06")  # the default table's price of a DEFAULT-speed image


def requests(count: int, number_results: int = 1) -> list[producing.NewJob]:
    out = []
    for n in range(count):
        row = dict(campaign_lines(1)[0]) | {"numberResults": number_results}
        row.get("providerSettings", {}).get("ideogram", {}).pop("renderingSpeed", None)
        row.get("settings", {}).pop("renderingSpeed", None)
        out.append(producing.NewJob(parse_request(row), f"line {n + 1}"))
    return out


def campaign(session: Session, budget: str | None) -> Campaign:
    found = producing.get_or_create_campaign(session, name=f"b-{uuid.uuid4()}", source="t")
    found.budget_usd = None if budget is None else Decimal(budget)
    session.flush()
    return found


def add(session: Session, of: Campaign, count: int, **kwargs: Any) -> list[int]:
    return producing.create_jobs(session, campaign=of, new_jobs=requests(count), **kwargs)


def deliver(session: Session, job_id: int, *costs: str) -> None:
    """The provider's webhook for the job: one image per cost, through the real ingestion."""
    job = session.get_one(Job, job_id)
    items = [
        {
            "taskType": "imageInference",
            "taskUUID": str(job.task_uuid),
            "imageUUID": str(uuid.uuid4()),
            "imageURL": "http://127.0.0.1/i.jpg",
            "seed": 1,
            "cost": float(cost),
        }
        for cost in costs
    ]
    ingest(session, body=json.dumps({"data": items}).encode(), expected_task_uuid=None)


def spend(session: Session, of: Campaign) -> budgets.Spend:
    return budgets.campaign_spend(session, [of.id]).get(of.id, budgets.Spend())


def test_each_job_stores_its_estimate_and_the_campaign_reserves_them(session: Session) -> None:
    of = campaign(session, "1.00")
    table = PriceTable.from_mapping({"ideogram:4@2": "0.07", "ideogram:1@2": "0.07"})
    ids = add(session, of, 3, prices=table)
    estimates = session.scalars(select(Job.estimated_cost).where(Job.id.in_(ids))).all()
    assert estimates == [Decimal("0.07")] * 3
    figures = spend(session, of)
    assert (figures.estimated, figures.reserved, figures.spent) == (
        Decimal("0.21"),
        Decimal("0.21"),
        0,
    )


def test_a_submission_that_does_not_fit_is_refused_whole_naming_the_figures(
    session: Session,
) -> None:
    of = campaign(session, "0.30")
    add(session, of, 4)  # 0.24 reserved
    with pytest.raises(BudgetExceeded) as refused:
        add(session, of, 2)  # 0.12 asked, 0.06 left
    text = str(refused.value)
    assert "'0.12'" in text  # what was asked
    assert "0.06 USD left" in text
    assert "budget is 0.30 USD" in text and "0.24 reserved" in text and "0.00 spent" in text
    assert refused.value.detail() == {
        "budget_usd": "0.30",
        "reserved_usd": "0.24",
        "spent_usd": "0.00",
        "asked_usd": "0.12",
    }
    assert spend(session, of).jobs == 4  # nothing of the refused submission was stored
    add(session, of, 1)  # exactly what is left fits
    assert spend(session, of).committed == Decimal("0.30")


def test_without_a_budget_nothing_is_refused(session: Session) -> None:
    of = campaign(session, None)
    add(session, of, 30)
    assert spend(session, of).reserved == 30 * PRICE


def test_settlement_frees_what_a_job_did_not_cost(session: Session) -> None:
    of = campaign(session, "0.12")
    first, second = add(session, of, 2)
    with pytest.raises(BudgetExceeded):
        add(session, of, 1)
    jobs.record_accepted(session, job_ids=[first, second])
    deliver(session, first, "0.02")  # completed at a third of its estimate
    figures = spend(session, of)
    assert (figures.spent, figures.reserved, figures.overrun) == (
        Decimal("0.02"),
        PRICE,
        0,
    )
    # 0.04 left: not enough for another 0.06 job yet.
    with pytest.raises(BudgetExceeded):
        add(session, of, 1)
    jobs.fail(session, job_ids=[second], code="invalidPrompt", message="refused")
    assert spend(session, of).committed == Decimal("0.02")  # a failed job costs what it cost
    add(session, of, 1)


def test_an_overrun_is_recorded_and_the_claim_holds_the_campaign(session: Session) -> None:
    of = campaign(session, "0.18")
    ids = add(session, of, 3)
    jobs.mark_enqueued(session, job_ids=ids)
    claimed = jobs.claim(session, job_ids=ids[:1], lease=timedelta(seconds=45))
    assert [c.job_id for c in claimed] == ids[:1]
    jobs.record_accepted(session, job_ids=ids[:1])
    deliver(session, ids[0], "0.10")  # the provider charged more than the table said
    figures = spend(session, of)
    assert (figures.spent, figures.overrun, figures.reserved) == (
        Decimal("0.10"),
        Decimal("0.04"),
        2 * PRICE,
    )
    assert figures.committed > Decimal("0.18")
    assert jobs.claim(session, job_ids=ids[1:], lease=timedelta(seconds=45)) == []
    session.refresh(of)
    assert of.paused_by == "budget"
    assert of.pause_reason is not None
    assert "budget of 0.18 USD" in of.pause_reason and "overrun by 0.04" in of.pause_reason
    statuses = session.scalars(select(Job.status).where(Job.id.in_(ids[1:]))).all()
    assert statuses == ["pending", "pending"]  # held, to be handed over again on resume
    summary = campaign_summary(session, of.id)
    assert summary is not None
    assert summary.to_json()["overrun_usd"] == "0.04"
    assert summary.to_json()["budget_left_usd"] == "-0.04"


def test_the_claim_goes_on_while_spend_fits(session: Session) -> None:
    of = campaign(session, "0.18")
    ids = add(session, of, 3)
    jobs.record_accepted(session, job_ids=[])
    jobs.mark_enqueued(session, job_ids=ids)
    jobs.claim(session, job_ids=ids[:1], lease=timedelta(seconds=45))
    jobs.record_accepted(session, job_ids=ids[:1])
    deliver(session, ids[0], "0.06")  # exactly the estimate: no overrun
    assert len(jobs.claim(session, job_ids=ids[1:], lease=timedelta(seconds=45))) == 2
    session.refresh(of)
    assert of.paused_at is None


def test_a_retry_reserves_again_and_is_refused_when_it_does_not_fit(session: Session) -> None:
    of = campaign(session, "0.12")
    first, second = add(session, of, 2)
    jobs.fail(session, job_ids=[first], code="invalidPrompt", message="refused")
    retried = producing.retry_failed(session, campaign_id=of.id)
    assert len(retried) == 1
    assert session.get_one(Job, retried[0]).estimated_cost == PRICE
    assert spend(session, of).reserved == 2 * PRICE
    # The retry failed too, after costing 0.07: 0.07 spent + 0.06 reserved leaves no room.
    jobs.record_accepted(session, job_ids=retried)
    deliver(session, retried[0], "0.07")
    session.get_one(Job, retried[0])  # completed now; fail the other, as the provider might
    jobs.fail(session, job_ids=[second], code="invalidPrompt", message="refused")
    with pytest.raises(BudgetExceeded):
        producing.retry_failed(session, campaign_id=of.id)  # 0.07 spent, 0.06 asked, 0.12


def test_a_new_budget_below_what_is_committed_is_refused(session: Session) -> None:
    of = campaign(session, "1.00")
    add(session, of, 3)
    with pytest.raises(BudgetExceeded) as refused:
        budgets.reserve(session, campaign_id=of.id, asked=Decimal(0), budget=Decimal("0.10"))
    assert "at least the 0.18 USD reserved and spent already" in str(refused.value)
    budgets.reserve(session, campaign_id=of.id, asked=Decimal(0), budget=Decimal("0.18"))
    session.refresh(of)
    assert of.budget_usd == Decimal("0.18")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("25.00", Decimal("25.00")), (3, Decimal(3)), (0.07, Decimal("0.07"))],
)
def test_budget_values(given: Any, expected: Decimal) -> None:
    assert budgets.check_budget(given) == expected


@pytest.mark.parametrize("given", ["-1", "abc", True, None, "NaN", "1e9", "0.00000000001"])
def test_bad_budget_values_are_refused_naming_the_field(given: Any) -> None:
    with pytest.raises(budgets.InvalidInput) as refused:
        budgets.check_budget(given, "--budget")
    assert str(refused.value).startswith("--budget: ")
