"""What campaigns cost, over real HTTP against a real `remixq receiver` (gunicorn, two worker
processes) on PostgreSQL, compared with what the real `remixq` commands print: estimates
(`submit --dry-run --json`) under a REMIXQ_PRICE_TABLE both read, spend reports (`costs
--json`), budgets changed (`budget`), jobs added to a campaign under its budget with an
idempotency key, and eight producers adding to one campaign at once never passing its budget."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from remixq.db import make_engine, utcnow
from remixq.models import Campaign, Image, Job
from tests.support.api import JOB, Api, api_env, api_receiver, new_key
from tests.support.cli import remixq

pytestmark = pytest.mark.e2e

# Replaces two defaults: 3.0 Remix at QUALITY, and 1.0 Remix at every speed.
PRICES = {"ideogram:4@2": {"QUALITY": "0.11"}, "ideogram:1@2": "0.05"}
OTHER_IMAGE = "https://assets.example.test/inputs/other.jpg"
PRICE = Decimal("0.06")  # JOB: one image of 3.0 Remix at the default speed


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = tmp_path_factory.mktemp("api-spend-data")
    prices = tmp_path_factory.mktemp("prices") / "prices.json"
    prices.write_text(json.dumps(PRICES))
    return api_env("api_spend", data, REMIXQ_PRICE_TABLE=str(prices))


@pytest.fixture(scope="module")
def engine(env: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(env["REMIXQ_DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def base(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with api_receiver(env, tmp_path_factory.mktemp("api-spend-receiver"), workers=2) as url:
        yield url


@pytest.fixture(scope="module")
def api(base: str, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Api:
    return Api(base, new_key(env, tmp_path_factory.mktemp("key"), "spender"))


@pytest.fixture(scope="module")
def reader(base: str, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Api:
    return Api(base, new_key(env, tmp_path_factory.mktemp("key"), "auditor", read_only=True))


def unique() -> str:
    return f"spend-{uuid.uuid4().hex[:10]}"


def spec(name: str | None = None) -> dict[str, Any]:
    """2 prompts x 2 speeds x 2 models, 2 images each, and one explicit job of one image."""
    defaults = {k: v for k, v in JOB.items() if k != "positivePrompt"} | {
        "numberResults": 2,
        "width": 1024,  # a size every model takes
        "height": 1024,
    }
    body: dict[str, Any] = {
        "budget_usd": "25.00",
        "defaults": defaults,
        "matrix": {
            "positivePrompt": ["a tea tin, autumn palette", "a tea tin, winter palette"],
            "providerSettings.ideogram.renderingSpeed": ["TURBO", "QUALITY"],
            "model": ["ideogram:4@2", "ideogram:1@2"],
        },
        "jobs": [{"positivePrompt": "one more tin", "numberResults": 1}],
    }
    return body if name is None else {"name": name, **body}


def error_of(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"] and "Traceback" not in response.text
    return error


def cli_json(tmp: Path, env: dict[str, str], *args: str) -> Any:
    done = remixq(tmp, *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as session:
        return (
            int(session.scalar(select(func.count()).select_from(Campaign)) or 0),
            int(session.scalar(select(func.count()).select_from(Job)) or 0),
        )


def job_count(engine: Engine, campaign_id: int) -> int:
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Job).where(Job.campaign_id == campaign_id)
            )
            or 0
        )


# -- estimates --------------------------------------------------------------------------------


def test_an_estimate_is_the_dry_runs_figures_and_stores_nothing(
    reader: Api, env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "tins.json"
    path.write_text(json.dumps(spec("tins")))
    dry = cli_json(tmp_path, env, "submit", str(path), "--dry-run")
    before = counts(engine)
    answer = reader.post("/estimates", json=spec("tins"))  # a read-only key may ask
    assert answer.status_code == 200, answer.text
    assert answer.json() == {k: v for k, v in dry.items() if k != "price_table"}
    assert env["REMIXQ_PRICE_TABLE"] in dry["price_table"]
    # Both read the price table: 4.0@2 at TURBO 0.03 and QUALITY 0.11, 1.0@2 at 0.05, two
    # images each, twice over (two prompts), and the explicit job's image at 0.06.
    figures = answer.json()
    assert (figures["jobs"], figures["images"]) == (9, 17)
    assert figures["estimated_cost_usd"] == "1.02"  # 2 x 2 x (0.03 + 0.11 + 0.05 + 0.05) + 0.06
    assert figures["by_model"]["ideogram:1@2"] == {
        "jobs": 4,
        "images": 8,
        "estimated_cost_usd": "0.40",
    }
    assert figures["by_variant"][1] == {
        "variant": {
            "positivePrompt": "a tea tin, autumn palette",
            "providerSettings.ideogram.renderingSpeed": "TURBO",
            "model": "ideogram:1@2",
        },
        "jobs": 1,
        "images": 2,
        "estimated_cost_usd": "0.10",
    }
    nameless = reader.post("/estimates", json=spec())
    assert nameless.status_code == 200 and nameless.json() == figures
    assert counts(engine) == before  # nothing stored


def test_a_bad_estimate_body_is_refused_whole(reader: Api) -> None:
    body = spec()
    body["matrix"]["providerSettings.ideogram.renderingSpeed"] = ["FAST"]
    body["jobs"] = [{"inputs": {"referenceImages": ["/etc/hostname"]}}]
    error = error_of(reader.post("/estimates", json=body), 422, "invalid_input")
    located = {(e.get("location"), e["field"]) for e in error["errors"]}
    assert ("job 0", "jobs[0].inputs.referenceImages[0]") in located
    assert any(
        (location or "").startswith("matrix {") and field.endswith("renderingSpeed")
        for location, field in located
    )
    error_of(reader.post("/estimates", data="jobs", headers={}), 415, "unsupported_media_type")
    refused = reader.post("/estimates", json={**spec(), "name": ""})
    assert error_of(refused, 422, "invalid_input")["errors"][0]["field"] == "name"


# -- spend ------------------------------------------------------------------------------------


def test_costs_answer_what_remixq_costs_prints(
    api: Api, reader: Api, env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    created = api.post("/campaigns", json=spec(unique()))
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    # Three jobs complete: their images cost a little more than the estimates, exactly.
    with Session(engine) as session, session.begin():
        jobs = session.scalars(
            select(Job).where(Job.campaign_id == cid).order_by(Job.id).limit(3)
        ).all()
        charged = Decimal(0)
        for n, job in enumerate(jobs):
            for _ in range(job.number_results):
                cost = (job.estimated_cost or 0) / job.number_results + Decimal(n + 1) / 10**9
                charged += cost
                session.add(Image(job_id=job.id, image_uuid=str(uuid.uuid4()), cost=cost, raw={}))
            job.status, job.results_received = "completed", job.number_results
    for by in ("campaign", "model", "day", "variant"):
        answer = reader.get("/costs", params={"campaign": cid, "by": by})
        assert answer.status_code == 200, answer.text
        printed = cli_json(tmp_path, env, "costs", "--campaign", f"#{cid}", "--by", by)
        assert answer.json() == printed | {"campaign": cid}, by
    report = reader.get("/costs", params={"campaign": cid}).json()
    assert Decimal(report["total"]["spent_usd"]) == charged
    assert report["rows"][0]["campaign_id"] == cid
    everything = reader.get("/costs", params={"by": "model"})
    assert everything.json() == cli_json(tmp_path, env, "costs", "--by", "model")

    campaign = reader.get(f"/campaigns/{cid}").json()
    assert Decimal(campaign["spent_usd"]) == charged == Decimal(campaign["cost_usd"])
    overrun = Decimal("0.000000001") * 2 + Decimal("0.000000002") * 2 + Decimal("0.000000003") * 2
    assert Decimal(campaign["overrun_usd"]) == overrun
    assert campaign["budget_usd"] == "25.00"
    assert campaign["reserved_usd"] == report["total"]["reserved_usd"]
    assert campaign["estimated_usd"] == report["total"]["estimated_usd"] == "1.02"

    error_of(reader.get("/costs", params={"by": "week"}), 422, "invalid_input")
    error_of(reader.get("/costs", params={"campaign": 2**40}), 404, "not_found")


# -- budgets ----------------------------------------------------------------------------------


def test_patch_changes_the_budget_as_remixq_budget_does(
    api: Api, reader: Api, engine: Engine
) -> None:
    made = api.post("/campaigns", json={"name": unique(), "jobs": [JOB] * 3, "budget_usd": "1"})
    cid = made.json()["id"]  # 0.18 reserved

    def patch(value: Any, client: Api = api) -> requests.Response:
        return client.request("PATCH", f"/campaigns/{cid}", json={"budget_usd": value})

    error = error_of(patch("0.10"), 409, "budget_exceeded")
    assert "'0.10' is not allowed; at least the 0.18 USD reserved and spent" in error["message"]
    assert (error["budget_usd"], error["reserved_usd"], error["spent_usd"]) == (
        "0.10", "0.18", "0.00"
    )  # fmt: skip
    unlimited = patch(None)
    assert unlimited.status_code == 200, unlimited.text
    assert (unlimited.json()["budget_usd"], unlimited.json()["budget_left_usd"]) == (None, None)
    exact = patch(0.18).json()
    assert (exact["budget_usd"], exact["reserved_usd"], exact["budget_left_usd"]) == (
        "0.18", "0.18", "0.00"
    )  # fmt: skip
    for body, field in (
        ({"budget_usd": "-1"}, "budget_usd"),
        ({"budget_usd": True}, "budget_usd"),
        ({}, "budget_usd"),
        ({"budget_usd": "1", "name": "x"}, "name"),
    ):
        bad = api.request("PATCH", f"/campaigns/{cid}", json=body)
        assert field in {e["field"] for e in error_of(bad, 422, "invalid_input")["errors"]}
    error_of(patch("1", reader), 403, "forbidden")
    error_of(api.request("PATCH", "/campaigns/999999", json={"budget_usd": "1"}), 404, "not_found")
    with Session(engine) as session:
        assert session.get_one(Campaign, cid).budget_usd == Decimal("0.18")

    # A campaign its budget paused (an overrun) goes on once the budget covers it again.
    with Session(engine) as session, session.begin():
        session.execute(
            update(Campaign)
            .where(Campaign.id == cid)
            .values(paused_at=utcnow(), paused_by="budget", pause_reason="budget: past it")
        )
    assert api.get(f"/campaigns/{cid}").json()["paused_by"] == "budget"
    resumed = patch("2.00").json()
    assert (resumed["paused"], resumed["paused_by"], resumed["budget_usd"]) == (False, None, "2.00")


def test_jobs_are_added_under_the_budget_with_an_idempotency_key(
    api: Api, reader: Api, engine: Engine
) -> None:
    made = api.post("/campaigns", json={"name": unique(), "jobs": [JOB] * 2, "budget_usd": "0.30"})
    cid = made.json()["id"]  # 0.12 reserved, 0.18 left
    key = {"Idempotency-Key": f"add-{uuid.uuid4()}"}

    more = {k: v for k, v in spec().items() if k != "budget_usd"}  # 9 jobs, 1.02 USD
    refused = api.post(f"/campaigns/{cid}/jobs", json=more, headers=key)
    error = error_of(refused, 409, "budget_exceeded")
    assert (error["asked_usd"], error["reserved_usd"], error["budget_usd"]) == (
        "1.02", "0.12", "0.30"
    )  # fmt: skip
    assert "refused whole" in error["message"] and job_count(engine, cid) == 2

    body = {"jobs": [JOB, JOB | {"positivePrompt": "another"}, JOB]}
    added = api.post(f"/campaigns/{cid}/jobs", json=body, headers=key)
    assert added.status_code == 201, added.text
    answer = added.json()
    assert answer["jobs"] == 3 and answer["campaign"]["id"] == cid
    assert (answer["campaign"]["reserved_usd"], answer["campaign"]["budget_left_usd"]) == (
        "0.30", "0.00"
    )  # fmt: skip
    again = api.post(f"/campaigns/{cid}/jobs", json=body, headers=key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["jobs"] == 3 and job_count(engine, cid) == 5  # nothing added twice
    other = api.post(f"/campaigns/{cid}/jobs", json={"jobs": [JOB]}, headers=key)
    assert error_of(other, 409, "idempotency_key_reused")["campaign_id"] == cid
    full = api.post(f"/campaigns/{cid}/jobs", json={"jobs": [JOB]})
    assert error_of(full, 409, "budget_exceeded")["asked_usd"] == "0.06"

    # A budget given with the jobs never changes the campaign's: one that differs is refused
    # whole, naming PATCH, which does; the same one is accepted. A spec's jobs keep variants.
    raised = api.post(f"/campaigns/{cid}/jobs", json={**more, "budget_usd": "2"})
    error = error_of(raised, 409, "budget_conflict")
    assert (error["budget_usd"], error["given_budget_usd"]) == ("0.30", "2.00")
    assert [(e["field"], e["value"]) for e in error["errors"]] == [("budget_usd", "2.00")]
    assert "campaign" in error["message"] and f"PATCH /api/v1/campaigns/{cid}" in error["message"]
    assert job_count(engine, cid) == 5
    assert api.request("PATCH", f"/campaigns/{cid}", json={"budget_usd": 2}).status_code == 200
    same = api.post(f"/campaigns/{cid}/jobs", json={**more, "budget_usd": "2.00"})
    assert same.status_code == 201, same.text
    assert same.json()["jobs"] == 9 and same.json()["campaign"]["budget_usd"] == "2.00"
    jobs = api.walk(f"/campaigns/{cid}/jobs", limit=100)
    assert len(jobs) == 14 and jobs[-1]["variant"] == {"job": 0}
    assert jobs[5]["variant"]["model"] == "ideogram:4@2"

    invalid = api.post(f"/campaigns/{cid}/jobs", json={"jobs": [JOB | {"numberResults": 99}]})
    problems = error_of(invalid, 422, "invalid_input")["errors"]
    located = {(e.get("location"), e["field"]) for e in problems}
    assert located == {("job 0", "jobs[0].numberResults")}
    named = api.post(f"/campaigns/{cid}/jobs", json={"name": "x", "jobs": [JOB]})
    assert error_of(named, 422, "invalid_input")["errors"][0]["field"] == "name"
    error_of(reader.post(f"/campaigns/{cid}/jobs", json={"jobs": [JOB]}), 403, "forbidden")
    error_of(api.post("/campaigns/999999/jobs", json={"jobs": [JOB]}), 404, "not_found")
    assert api.post(f"/campaigns/{cid}/cancel").status_code == 200
    cancelled = api.post(f"/campaigns/{cid}/jobs", json={"jobs": [JOB]})
    assert "is cancelled" in error_of(cancelled, 409, "campaign_cancelled")["message"]
    assert job_count(engine, cid) == 14


PRODUCERS = 8
ROUNDS = 6
BUDGET = Decimal("1.50")  # 25 jobs; the producers ask for about twice as many


def test_eight_producers_adding_at_once_never_pass_the_budget(api: Api, engine: Engine) -> None:
    made = api.post("/campaigns", json={"name": unique(), "jobs": [JOB], "budget_usd": "1.50"})
    cid = made.json()["id"]
    start = threading.Barrier(PRODUCERS)

    def produce(index: int) -> tuple[int, int]:
        client = Api(api.base, api.key)  # a connection of its own
        accepted = refused = 0
        start.wait(timeout=60)
        for n in range(ROUNDS):
            size = 1 + (index + n) % 3
            answer = client.post(f"/campaigns/{cid}/jobs", json={"jobs": [JOB] * size})
            if answer.status_code == 201:
                assert answer.json()["jobs"] == size
                accepted += size
            else:
                error_of(answer, 409, "budget_exceeded")
                refused += 1
        return accepted, refused

    with ThreadPoolExecutor(PRODUCERS) as pool:
        results = list(pool.map(produce, range(PRODUCERS)))
    accepted = 1 + sum(a for a, _ in results)
    assert sum(r for _, r in results) > 0, "the producers asked for less than the budget"
    with Session(engine) as session:
        estimates = session.scalars(select(Job.estimated_cost).where(Job.campaign_id == cid)).all()
    assert len(estimates) == accepted
    assert sum(e or Decimal(0) for e in estimates) == accepted * PRICE <= BUDGET
    assert BUDGET - accepted * PRICE < 3 * PRICE  # refusals came once it was nearly full
    campaign = api.get(f"/campaigns/{cid}").json()
    assert Decimal(campaign["reserved_usd"]) == accepted * PRICE
    assert Decimal(campaign["budget_left_usd"]) >= 0


def test_failover_is_a_campaign_option_of_create_and_patch(
    api: Api, reader: Api, engine: Engine
) -> None:
    made = api.post("/campaigns", json={"name": unique(), "jobs": [JOB], "failover": "ideogram"})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    assert api.get(f"/campaigns/{cid}").json()["failover"] == "ideogram"
    plain = api.post("/campaigns", json={"name": unique(), "jobs": [JOB]})
    assert api.get(f"/campaigns/{plain.json()['id']}").json()["failover"] is None  # off

    def patch(body: dict[str, Any], client: Api = api) -> requests.Response:
        return client.request("PATCH", f"/campaigns/{cid}", json=body)

    off = patch({"failover": "off"})
    assert off.status_code == 200, off.text
    assert off.json()["failover"] is None
    both = patch({"failover": "ideogram", "budget_usd": "5"}).json()
    assert (both["failover"], both["budget_usd"]) == ("ideogram", "5.00")
    assert patch({"failover": None}).json()["failover"] is None
    for body, allowed in (({"failover": "runware"}, "one of ideogram, off"), ({"failover": 1}, "")):
        bad = error_of(patch(body), 422, "invalid_input")
        assert {e["field"] for e in bad["errors"]} == {"failover"}
        assert allowed in bad["errors"][0]["allowed"]
    refused = api.post("/campaigns", json={"name": unique(), "jobs": [JOB], "failover": "x"})
    assert "failover" in {e["field"] for e in error_of(refused, 422, "invalid_input")["errors"]}
    error_of(patch({"failover": "ideogram"}, reader), 403, "forbidden")
    with Session(engine) as session:
        assert session.get_one(Campaign, cid).failover is None
