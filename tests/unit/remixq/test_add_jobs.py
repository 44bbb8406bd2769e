"""Jobs added to an existing campaign (the API's POST /campaigns/{id}/jobs) on real databases:
reserved under the campaign's budget and refused whole when they do not fit, a budget given
with them, idempotent with a key, and refused for a cancelled or unknown campaign."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from remixq import apikeys, budgets, producing
from remixq.budgets import BudgetExceeded
from remixq.control import cancel_campaign
from remixq.db import make_sessionmaker, transaction
from remixq.errors import UnknownCampaign
from remixq.idempotency import IdempotencyKeyReused
from remixq.models import Campaign, Job
from remixq.providers.runware import parse_request
from remixq.specs import parse_spec, read_spec
from remixq.submission import (
    Added,
    CampaignCancelled,
    add_and_enqueue,
    create_and_enqueue,
)
from remixq.url_policy import UrlPolicy

REQUEST = {
    "model": "ideogram:4@2",
    "positivePrompt": "a tea tin",
    "width": 1024,
    "height": 1024,
    "inputs": {"referenceImages": ["https://assets.example.test/inputs/tin.jpg"]},
}  # one image at the default speed: 0.06 USD


def requests_(count: int) -> list[producing.NewJob]:
    return [producing.NewJob(parse_request(REQUEST)) for _ in range(count)]


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def key_id(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        made = apikeys.create_key(session, name=f"adder-{uuid.uuid4().hex[:12]}")
        found = apikeys.authenticate(session, made.key)
    assert found is not None
    return found.id


def campaign(sessions: sessionmaker[Session], key_id: int, budget: str, jobs: int = 2) -> int:
    made = create_and_enqueue(
        sessions,
        name=f"add-{uuid.uuid4()}",
        new_jobs=requests_(jobs),
        enqueue=None,
        api_key_id=key_id,
        budget_usd=Decimal(budget),
    )
    return made.campaign_id


def figures(sessions: sessionmaker[Session], campaign_id: int) -> tuple[int, budgets.Spend]:
    with sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(Job).where(Job.campaign_id == campaign_id)
        )
        spend = budgets.campaign_spend(session, [campaign_id]).get(campaign_id, budgets.Spend())
    return int(count or 0), spend


def recorded(_sessions: sessionmaker[Session], ids: Sequence[int], into: list[int]) -> None:
    into.extend(ids)


def test_added_jobs_are_reserved_and_refused_whole_past_the_budget(
    sessions: sessionmaker[Session], key_id: int
) -> None:
    cid = campaign(sessions, key_id, "0.30")  # 0.12 reserved
    with pytest.raises(BudgetExceeded) as refused:
        add_and_enqueue(
            sessions, campaign_id=cid, new_jobs=requests_(4), enqueue=None, api_key_id=key_id
        )
    assert refused.value.detail() == {
        "budget_usd": "0.30",
        "reserved_usd": "0.12",
        "spent_usd": "0.00",
        "asked_usd": "0.24",
    }
    assert figures(sessions, cid)[0] == 2  # nothing of it stored

    enqueued: list[int] = []
    added = add_and_enqueue(
        sessions,
        campaign_id=cid,
        new_jobs=requests_(3),
        enqueue=lambda made, ids: recorded(made, ids, enqueued),
        api_key_id=key_id,
    )
    assert len(added.job_ids) == 3 and not added.replayed and added.broker_error is None
    assert enqueued == added.job_ids  # handed over after the commit
    count, spend = figures(sessions, cid)
    assert count == 5 and spend.reserved == Decimal("0.30") == spend.estimated

    # A budget given with the jobs is the campaign's from then on, and they count against it.
    more = add_and_enqueue(
        sessions,
        campaign_id=cid,
        new_jobs=requests_(2),
        enqueue=None,
        api_key_id=key_id,
        budget=Decimal("0.42"),
    )
    assert len(more.job_ids) == 2
    with sessions() as session:
        assert session.get_one(Campaign, cid).budget_usd == Decimal("0.42")
    assert figures(sessions, cid)[1].reserved == Decimal("0.42")


def test_a_spec_adds_its_variants(sessions: sessionmaker[Session], key_id: int) -> None:
    cid = campaign(sessions, key_id, "10")
    spec = parse_spec(
        {
            "defaults": REQUEST,
            "matrix": {"numberResults": [1, 3], "positivePrompt": ["autumn", "winter"]},
        }
    )
    new = read_spec(spec, local_images=None, urls=UrlPolicy(), max_jobs=10)
    added = add_and_enqueue(
        sessions, campaign_id=cid, new_jobs=new, enqueue=None, api_key_id=key_id
    )
    with sessions() as session:
        stored = session.scalars(select(Job).where(Job.id.in_(added.job_ids)).order_by(Job.id))
        assert [(job.variant, job.estimated_cost) for job in stored] == [
            ({"numberResults": n, "positivePrompt": p}, Decimal("0.06") * n)
            for n in (1, 3)
            for p in ("autumn", "winter")
        ]


def test_the_same_key_and_request_add_once(sessions: sessionmaker[Session], key_id: int) -> None:
    cid = campaign(sessions, key_id, "5")
    key = f"add-{uuid.uuid4()}"

    def add(digest: str) -> Added:
        return add_and_enqueue(
            sessions,
            campaign_id=cid,
            new_jobs=requests_(2),
            enqueue=None,
            api_key_id=key_id,
            idempotency_key=key,
            request_sha256=digest,
        )

    first = add("a" * 64)
    assert len(first.job_ids) == 2 and not first.replayed
    assert add("a" * 64) == Added(cid, [], replayed=True)  # nothing stored again
    assert figures(sessions, cid)[0] == 4
    with pytest.raises(IdempotencyKeyReused) as reused:
        add("b" * 64)
    assert reused.value.campaign_id == cid
    assert figures(sessions, cid)[0] == 4


def test_a_cancelled_or_unknown_campaign_takes_no_jobs(
    sessions: sessionmaker[Session], key_id: int
) -> None:
    cid = campaign(sessions, key_id, "5")
    with transaction(sessions) as session:
        assert cancel_campaign(session, cid) == 2
    with pytest.raises(CampaignCancelled) as cancelled:
        add_and_enqueue(
            sessions, campaign_id=cid, new_jobs=requests_(1), enqueue=None, api_key_id=key_id
        )
    assert f"(id {cid}) is cancelled" in str(cancelled.value)
    assert figures(sessions, cid)[0] == 2
    with pytest.raises(UnknownCampaign):
        add_and_enqueue(
            sessions, campaign_id=2**62, new_jobs=requests_(1), enqueue=None, api_key_id=key_id
        )
