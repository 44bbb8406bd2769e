"""The REST API over real HTTP against a real `remixq receiver` (gunicorn, gevent) on
PostgreSQL, with keys made by the real `remixq apikey` command: authentication, create, read
and page, idempotent creates racing, the controls, and the error document of every failure."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from remixq import jobs
from remixq.cli.processes import wait_until
from remixq.db import make_engine
from remixq.models import ApiKey, Campaign, Job
from tests.support.api import JOB, Api, api_env, api_receiver, new_key
from tests.support.cli import remixq

pytestmark = pytest.mark.e2e

MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # The embedded broker in the data folder: the API's resume and retry publish to it.
    data = tmp_path_factory.mktemp("api-data")
    return api_env("api", data, REMIXQ_API_MAX_BODY_BYTES=str(MAX_BODY))


@pytest.fixture(scope="module")
def engine(env: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(env["REMIXQ_DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def receiver_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-receiver")


@pytest.fixture(scope="module")
def base(env: dict[str, str], receiver_dir: Path) -> Iterator[str]:
    with api_receiver(env, receiver_dir, workers=2) as url:
        yield url


@pytest.fixture(scope="module")
def api(base: str, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Api:
    return Api(base, new_key(env, tmp_path_factory.mktemp("key"), "writer"))


def unique(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """A JSON error document with a stable code: never HTML, never a traceback."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"], error
    assert "Traceback" not in response.text and "<html" not in response.text.lower()
    return error


# -- authentication ---------------------------------------------------------------------------


def test_every_route_but_the_document_needs_a_live_key(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    campaign = api.create(unique())
    anonymous = api.with_key(None)
    for method, path in [
        ("GET", "/campaigns"),
        ("GET", f"/campaigns/{campaign['id']}"),
        ("GET", f"/campaigns/{campaign['id']}/jobs"),
        ("GET", f"/campaigns/{campaign['id']}/images"),
        ("POST", "/campaigns"),
        ("POST", f"/campaigns/{campaign['id']}/cancel"),
        ("POST", "/estimates"),
        ("GET", "/costs"),
        ("PATCH", f"/campaigns/{campaign['id']}"),
        ("POST", f"/campaigns/{campaign['id']}/jobs"),
    ]:
        response = anonymous.request(method, path)
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(api.with_key("rmxq_00000000_" + "A" * 43).get("/campaigns"), 401, "unauthorized")
    assert_error(api.with_key(api.key + "x").get("/campaigns"), 401, "unauthorized")  # type: ignore[operator]
    assert_error(
        anonymous.get("/campaigns", headers={"Authorization": f"Basic {api.key}"}),
        401,
        "unauthorized",
    )
    document = anonymous.get("/openapi.json")
    assert document.status_code == 200 and document.json()["openapi"].startswith("3.1")

    name = unique("revoked")
    revoked = api.with_key(new_key(env, tmp_path, name))
    assert revoked.get("/campaigns").status_code == 200
    done = remixq(tmp_path, "apikey", "revoke", name, env=env)
    assert done.returncode == 0, done.stderr
    assert_error(revoked.get("/campaigns"), 401, "unauthorized")


def test_a_read_only_key_reads_and_is_refused_any_change(
    api: Api, env: dict[str, str], tmp_path: Path, engine: Engine
) -> None:
    campaign = api.create(unique())
    reader = api.with_key(new_key(env, tmp_path, unique("reader"), read_only=True))
    assert reader.get(f"/campaigns/{campaign['id']}").json()["name"] == campaign["name"]
    name = unique()
    refused = reader.post("/campaigns", json={"name": name, "jobs": [JOB]})
    assert "read-only" in assert_error(refused, 403, "forbidden")["message"]
    for control in ("cancel", "pause", "resume", "retry"):
        assert_error(reader.post(f"/campaigns/{campaign['id']}/{control}"), 403, "forbidden")
    with Session(engine) as session:
        assert session.scalar(select(Campaign).where(Campaign.name == name)) is None
        assert (
            session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.campaign_id == campaign["id"], Job.status == "cancelled")
            )
            == 0
        )


def test_apikey_list_never_shows_a_key_and_records_use(
    api: Api, env: dict[str, str], tmp_path: Path, engine: Engine, receiver_dir: Path
) -> None:
    api.get("/campaigns")
    listed = remixq(tmp_path, "apikey", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert api.key is not None and api.key not in listed.stdout
    assert api.key.split("_", 2)[2] not in listed.stdout
    with Session(engine) as session:
        writer = session.scalars(select(ApiKey).where(ApiKey.name == "writer")).one()
        assert writer.last_used_at is not None
    log = receiver_dir / "logs" / "receiver.log"
    wait_until(lambda: "key_name=writer" in log.read_text(), timeout=10, what="the request's line")
    lines = [line for line in log.read_text().splitlines() if "api request" in line]
    assert any("path=/api/v1/campaigns" in line and "status=200" in line for line in lines)
    assert api.key not in log.read_text()


# -- create, read, page -----------------------------------------------------------------------


def test_create_stores_the_jobs_and_names_the_key(api: Api, engine: Engine) -> None:
    name = unique()
    response = api.post(
        "/campaigns", json={"name": name, "jobs": [JOB, {**JOB, "numberResults": 2}]}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == name and created["api_key"] == "writer"
    assert sum(created["counts"].values()) == 2 and created["cost_usd"] == "0.00"
    assert response.headers["Location"].endswith(f"/api/v1/campaigns/{created['id']}")
    got = api.get(f"/campaigns/{created['id']}").json()
    assert got["id"] == created["id"] and got["api_key"] == "writer"
    with Session(engine) as session:
        campaign = session.get_one(Campaign, created["id"])
        assert campaign.api_key is not None and campaign.api_key.name == "writer"
        stored = list(
            session.scalars(select(Job).where(Job.campaign_id == campaign.id).order_by(Job.id))
        )
    assert [job.number_results for job in stored] == [1, 2]
    assert all("webhookURL" not in job.request for job in stored)


def test_an_invalid_body_is_refused_whole_with_every_error(api: Api, engine: Engine) -> None:
    name = unique()
    local_file = {**JOB, "inputs": {"referenceImages": ["/etc/hostname"]}}
    body = {"name": name, "jobs": [JOB, {**JOB, "model": "nope"}, 7, local_file]}
    error = assert_error(api.post("/campaigns", json=body), 422, "invalid_input")
    located = {(e["location"], e["field"]) for e in error["errors"]}
    assert ("job 1", "jobs[1].model") in located
    assert ("job 2", "jobs[2]") in located
    assert ("job 3", "jobs[3].inputs.referenceImages[0]") in located  # never a file on our disk
    model_error = next(e for e in error["errors"] if e["field"] == "jobs[1].model")
    assert model_error["value"] == "nope" and "ideogram:4@2" in model_error["allowed"]
    with Session(engine) as session:
        assert session.scalar(select(Campaign).where(Campaign.name == name)) is None
    missing = assert_error(api.post("/campaigns", json={"jobs": []}), 422, "invalid_input")
    assert {e["field"] for e in missing["errors"]} == {"name", "jobs"}


def test_lists_page_by_cursor_and_stay_stable_under_concurrent_inserts(api: Api) -> None:
    first = api.create(unique(), jobs=23)
    jobs = api.walk(f"/campaigns/{first['id']}/jobs", limit=5)
    assert len(jobs) == 23 and [j["id"] for j in jobs] == sorted({j["id"] for j in jobs})
    assert {j["status"] for j in jobs} == {"queued"}  # handed to the broker by the receiver
    queued = api.get(f"/campaigns/{first['id']}/jobs", params={"status": "queued", "limit": 500})
    assert len(queued.json()["items"]) == 23
    assert api.get(f"/campaigns/{first['id']}/jobs", params={"status": "failed"}).json() == {
        "items": [],
        "next_cursor": None,
    }
    before = {c["id"] for c in api.walk("/campaigns", limit=500)}
    stop = threading.Event()
    inserted: list[int] = []

    def insert() -> None:
        while not stop.is_set():
            inserted.append(api.with_key(api.key).create(unique("during"))["id"])

    inserter = threading.Thread(target=insert)
    inserter.start()
    try:
        seen = [c["id"] for c in api.walk("/campaigns", limit=3)]
    finally:
        stop.set()
        inserter.join(30)
    assert inserted, "no campaign was inserted during the walk"
    assert seen == sorted(set(seen)), "a page repeated or reordered a campaign"
    assert before <= set(seen), "a campaign that existed before the walk was skipped"


def test_two_concurrent_identical_creates_make_one_campaign(api: Api, engine: Engine) -> None:
    name, key = unique(), f"idem-{uuid.uuid4()}"
    body = {"name": name, "jobs": [JOB] * 3}
    barrier = threading.Barrier(2)
    answers: list[requests.Response] = []

    def post() -> None:
        client = api.with_key(api.key)  # a connection of its own
        barrier.wait()
        answers.append(client.post("/campaigns", json=body, headers={"Idempotency-Key": key}))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a.status_code for a in answers) in ([200, 201], [201, 201]), [
        a.text for a in answers
    ]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    again = api.post("/campaigns", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.json()["id"] in ids
    assert again.headers["Idempotent-Replayed"] == "true"
    with Session(engine) as session:
        assert (
            session.scalar(select(func.count()).select_from(Campaign).where(Campaign.name == name))
            == 1
        )
        assert (
            session.scalar(select(func.count()).select_from(Job).where(Job.campaign_id.in_(ids)))
            == 3
        )
    other = api.post(
        "/campaigns", json={**body, "name": unique()}, headers={"Idempotency-Key": key}
    )
    assert assert_error(other, 409, "idempotency_key_reused")["campaign_id"] in ids


def test_a_taken_name_is_a_conflict(api: Api) -> None:
    taken = api.create(unique())
    response = api.post("/campaigns", json={"name": taken["name"], "jobs": [JOB]})
    assert assert_error(response, 409, "campaign_name_taken")["campaign_id"] == taken["id"]


# -- controls ---------------------------------------------------------------------------------


def statuses(engine: Engine, campaign_id: int) -> list[str]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(Job.status).where(Job.campaign_id == campaign_id).order_by(Job.id)
            )
        )


def test_pause_resume_cancel_and_retry(api: Api, engine: Engine) -> None:
    campaign = api.create(unique(), jobs=4)
    cid = campaign["id"]
    paused = api.post(f"/campaigns/{cid}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["campaign"]["paused"] is True and paused.json()["jobs"] == 1
    assert api.post(f"/campaigns/{cid}/pause").json()["jobs"] == 0  # already paused: a no-op

    resumed = api.post(f"/campaigns/{cid}/resume").json()
    assert resumed["campaign"]["paused"] is False and resumed["jobs"] == 4
    assert resumed["enqueued"] is True
    assert statuses(engine, cid) == ["queued"] * 4  # handed to the broker by the receiver

    # Two jobs fail at the provider; a retry gives each one new attempt.
    with Session(engine) as session, session.begin():
        first_two = select(Job.id).where(Job.campaign_id == cid).order_by(Job.id).limit(2)
        session.execute(
            update(Job)
            .where(Job.id.in_(list(session.scalars(first_two))))
            .values(status="failed", error_code="invalidProviderContent", error_message="no")
        )
    retried = api.post(f"/campaigns/{cid}/retry").json()
    assert retried["jobs"] == 2
    jobs = api.walk(f"/campaigns/{cid}/jobs", limit=100)
    assert len(jobs) == 6 and sum(1 for j in jobs if j["retry_of"] is not None) == 2
    assert api.post(f"/campaigns/{cid}/retry").json()["jobs"] == 0  # each retried once

    cancelled = api.post(f"/campaigns/{cid}/cancel").json()
    assert cancelled["jobs"] == 4 and cancelled["campaign"]["cancelled_at"] is not None
    assert cancelled["campaign"]["counts"] == {"cancelled": 4}
    assert api.post(f"/campaigns/{cid}/cancel").json()["jobs"] == 0
    assert_error(api.post("/campaigns/987654/cancel"), 404, "not_found")


# -- every error shape ------------------------------------------------------------------------


def test_every_failure_is_a_json_error_document(api: Api) -> None:
    campaign = api.create(unique())
    assert_error(api.get("/campaigns/987654"), 404, "not_found")
    assert_error(api.get("/campaigns/987654/jobs"), 404, "not_found")
    assert_error(api.get("/campaigns/987654/images"), 404, "not_found")
    assert_error(api.get("/nothing/here"), 404, "not_found")
    assert_error(api.with_key(None).get("/nothing/here"), 404, "not_found")
    assert_error(api.request("DELETE", f"/campaigns/{campaign['id']}"), 405, "method_not_allowed")
    assert_error(api.get("/campaigns/not-a-number"), 404, "not_found")
    assert_error(api.post(f"/campaigns/{2**64}/pause"), 404, "not_found")  # beyond BIGINT
    too_big = api.post(
        "/campaigns",
        data=b'{"name": "' + b"x" * MAX_BODY + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert "REMIXQ_API_MAX_BODY_BYTES" in assert_error(too_big, 413, "body_too_large")["message"]
    assert_error(api.post("/campaigns", data="name=x"), 415, "unsupported_media_type")
    malformed = api.post("/campaigns", data="{nope", headers={"Content-Type": "application/json"})
    assert assert_error(malformed, 422, "invalid_input")["errors"][0]["field"] == "(body)"
    huge = base64.urlsafe_b64encode(f"id:{10**25}".encode()).decode()
    for params in (
        {"limit": 0},
        {"limit": 100000},
        {"limit": "x"},
        {"cursor": "!!"},
        {"cursor": huge},
    ):
        error = assert_error(api.get("/campaigns", params=params), 422, "invalid_input")
        assert error["errors"][0]["field"] in params
    bad_status = assert_error(
        api.get(f"/campaigns/{campaign['id']}/jobs", params={"status": "done"}),
        422,
        "invalid_input",
    )
    assert "cancelled" in bad_status["errors"][0]["allowed"]
    bad_key = api.post(
        "/campaigns",
        json={"name": unique(), "jobs": [JOB]},
        headers={"Idempotency-Key": "x" * 201},
    )
    assert assert_error(bad_key, 422, "invalid_input")["errors"][0]["field"] == "Idempotency-Key"
    # The webhook routes keep their own documents.
    webhook = requests.get(f"{api.base}/webhooks/nothing", timeout=10)
    assert webhook.status_code == 404 and webhook.json()["error"] == "not_found"


def test_resume_lifts_a_pause_the_accounts_refusal_made(api: Api, engine: Engine) -> None:
    campaign = api.create(unique(), jobs=2)
    cid = campaign["id"]
    with Session(engine) as session, session.begin():
        job_ids = list(session.scalars(select(Job.id).where(Job.campaign_id == cid)))
        assert jobs.pause_campaigns(session, job_ids=job_ids, reason="402 insufficientCredit")
    paused = api.get(f"/campaigns/{cid}").json()
    assert paused["paused"] is True and paused["pause_reason"] == "402 insufficientCredit"
    resumed = api.post(f"/campaigns/{cid}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["campaign"]["paused"] is False and resumed.json()["jobs"] == 2
    assert statuses(engine, cid) == ["queued", "queued"]


# -- budgets ----------------------------------------------------------------------------------


def test_a_budget_reserves_the_estimates_and_refuses_what_does_not_fit(
    api: Api, engine: Engine
) -> None:
    name = unique()
    over = api.post("/campaigns", json={"name": name, "jobs": [JOB] * 3, "budget_usd": "0.15"})
    error = assert_error(over, 409, "budget_exceeded")
    assert (error["budget_usd"], error["reserved_usd"], error["spent_usd"]) == (
        "0.15", "0.00", "0.00"
    )  # fmt: skip
    assert error["asked_usd"] == "0.18" and "refused whole" in error["message"]
    with Session(engine) as session:
        assert session.scalar(select(Campaign).where(Campaign.name == name)) is None

    body = {"name": name, "jobs": [JOB] * 3, "budget_usd": 0.2}
    created = api.post("/campaigns", json=body)
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert (campaign["budget_usd"], campaign["reserved_usd"], campaign["budget_left_usd"]) == (
        "0.20", "0.18", "0.02"
    )  # fmt: skip
    assert campaign["estimated_usd"] == "0.18" and campaign["overrun_usd"] == "0.00"
    cid = campaign["id"]
    # Two jobs fail; their reservations are released, and the retry reserves them again.
    with Session(engine) as session, session.begin():
        first_two = select(Job.id).where(Job.campaign_id == cid).order_by(Job.id).limit(2)
        session.execute(
            update(Job)
            .where(Job.id.in_(list(session.scalars(first_two))))
            .values(status="failed", error_code="invalidProviderContent", error_message="no")
        )
    assert api.get(f"/campaigns/{cid}").json()["reserved_usd"] == "0.06"
    retried = api.post(f"/campaigns/{cid}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["campaign"]["reserved_usd"] == "0.18"
    # The retries fail too; a retry of both would fit, and fills the budget up again.
    with Session(engine) as session, session.begin():
        session.execute(
            update(Job)
            .where(Job.campaign_id == cid, Job.retry_of_id.is_not(None))
            .values(status="failed", error_code="invalidProviderContent", error_message="no")
        )
    with Session(engine) as session, session.begin():
        session.execute(update(Campaign).where(Campaign.id == cid).values(budget_usd="0.10"))
    refused = assert_error(api.post(f"/campaigns/{cid}/retry"), 409, "budget_exceeded")
    assert refused["asked_usd"] == "0.12" and refused["reserved_usd"] == "0.06"
    bad = assert_error(
        api.post("/campaigns", json={"name": unique(), "jobs": [JOB], "budget_usd": "-1"}),
        422,
        "invalid_input",
    )
    assert bad["errors"][0]["field"] == "budget_usd"
