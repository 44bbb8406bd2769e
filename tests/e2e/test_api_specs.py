"""POST /api/v1/campaigns with a spec body, over real HTTP against a real `remixq receiver`
(gunicorn) on PostgreSQL: the matrix expanded, variants in the job views and the export, the
budget stored, errors located by axis values, the cap and `allow_large`, idempotent replays,
and the OpenAPI document describing the spec."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from remixq.db import make_engine
from remixq.models import Campaign, Job
from remixq.specs import matrix_location
from tests.support.api import JOB, Api, api_env, api_receiver, new_key

pytestmark = pytest.mark.e2e

MAX_MATRIX_JOBS = 6
OTHER_IMAGE = "https://assets.example.test/inputs/other.jpg"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = tmp_path_factory.mktemp("api-specs-data")
    return api_env("api-specs", data, REMIXQ_MAX_MATRIX_JOBS=str(MAX_MATRIX_JOBS))


@pytest.fixture(scope="module")
def engine(env: dict[str, str]) -> Iterator[Engine]:
    engine = make_engine(env["REMIXQ_DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def api(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with api_receiver(env, tmp_path_factory.mktemp("api-specs-receiver")) as base:
        yield Api(base, new_key(env, tmp_path_factory.mktemp("key"), "spec-writer"))


def unique() -> str:
    return f"spec-{uuid.uuid4().hex[:10]}"


def spec_body(name: str, **extra: Any) -> dict[str, Any]:
    defaults = {k: v for k, v in JOB.items() if k != "positivePrompt"} | {"numberResults": 2}
    return {
        "name": name,
        "budget_usd": "25.00",
        "defaults": defaults,
        "matrix": {
            "positivePrompt": ["a tea tin, autumn palette", "a tea tin, winter palette"],
            "inputs.referenceImages": [[JOB["inputs"]["referenceImages"][0]], [OTHER_IMAGE]],
        },
        "jobs": [{"positivePrompt": "one more tin", "numberResults": 1}],
        **extra,
    }


def error_of(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and "Traceback" not in response.text
    return error


def test_a_spec_body_makes_one_job_per_variant(api: Api, engine: Engine) -> None:
    name = unique()
    response = api.post("/campaigns", json=spec_body(name))
    assert response.status_code == 201, response.text
    created = response.json()
    assert sum(created["counts"].values()) == 5
    jobs = api.walk(f"/campaigns/{created['id']}/jobs", limit=100)
    assert [job["variant"] for job in jobs] == [
        {"positivePrompt": p, "inputs.referenceImages": [image]}
        for p in ("a tea tin, autumn palette", "a tea tin, winter palette")
        for image in (JOB["inputs"]["referenceImages"][0], OTHER_IMAGE)
    ] + [{"job": 0}]
    assert [job["results_expected"] for job in jobs] == [2, 2, 2, 2, 1]
    with Session(engine) as session:
        campaign = session.scalars(select(Campaign).where(Campaign.name == name)).one()
        assert campaign.budget_usd == Decimal("25.00")
        stored = session.scalars(
            select(Job).where(Job.campaign_id == campaign.id).order_by(Job.id)
        ).all()
        assert stored[1].request["inputs"]["referenceImages"] == [OTHER_IMAGE]
        assert stored[4].request["positivePrompt"] == "one more tin"
        assert stored[4].request["width"] == JOB["width"]  # from the defaults
        assert stored[0].variant == jobs[0]["variant"]


def test_the_plain_form_still_works(api: Api) -> None:
    created = api.create(unique(), jobs=2)
    jobs = api.walk(f"/campaigns/{created['id']}/jobs", limit=10)
    assert [job["variant"] for job in jobs] == [{"job": 0}, {"job": 1}]


def test_errors_name_the_axis_values_and_local_files_are_refused(api: Api, engine: Engine) -> None:
    name = unique()
    body = spec_body(name)
    body["matrix"]["providerSettings.ideogram.stylePreset"] = ["NOPE"]
    body["jobs"] = [{"inputs": {"referenceImages": ["/etc/hostname"]}}]
    error = error_of(api.post("/campaigns", json=body), 422, "invalid_input")
    located = {(e.get("location"), e["field"], e["value"]) for e in error["errors"]}
    where = matrix_location(
        {
            "positivePrompt": "a tea tin, autumn palette",
            "inputs.referenceImages": JOB["inputs"]["referenceImages"],
            "providerSettings.ideogram.stylePreset": "NOPE",
        }
    )
    assert where.startswith('matrix {positivePrompt: "a tea tin, autumn palette", inputs.')
    assert (where, "providerSettings.ideogram.stylePreset", "NOPE") in located
    assert ("job 0", "jobs[0].inputs.referenceImages[0]", "/etc/hostname") in located
    assert len(error["errors"]) == 5  # the 4 combinations, and the job
    with Session(engine) as session:
        assert session.scalar(select(Campaign).where(Campaign.name == name)) is None


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"matrix": {"positivePrompt": []}}, "matrix.positivePrompt"),
        ({"budget_usd": "-3"}, "budget_usd"),
        ({"matrix": None, "jobs": []}, "jobs"),
        ({"defaults": [1]}, "defaults"),
        ({"allow_large": "yes"}, "allow_large"),
    ],
)
def test_a_bad_spec_is_a_422_naming_the_part(api: Api, patch: dict[str, Any], field: str) -> None:
    error = error_of(api.post("/campaigns", json=spec_body(unique()) | patch), 422, "invalid_input")
    assert field in {e["field"] for e in error["errors"]}, error


def test_a_matrix_past_the_cap_needs_allow_large(api: Api, engine: Engine) -> None:
    name = unique()
    body = spec_body(name)
    body["matrix"]["numberResults"] = [1, 3]  # 2 x 2 x 2 = 8 matrix jobs, and 1 explicit
    error = error_of(api.post("/campaigns", json=body), 422, "invalid_input")
    [problem] = error["errors"]
    assert problem["field"] == "matrix"
    assert problem["value"] == "2 x 2 x 2 axis values and 1 jobs = 9 jobs"
    assert f"at most {MAX_MATRIX_JOBS} jobs (REMIXQ_MAX_MATRIX_JOBS)" in problem["allowed"]
    assert '"allow_large": true' in problem["allowed"]
    allowed = api.post("/campaigns", json={**body, "allow_large": True})
    assert allowed.status_code == 201, allowed.text
    assert sum(allowed.json()["counts"].values()) == 9
    # Never more than 10,000 jobs in one request, allowed or not.
    body["matrix"] |= {
        "numberResults": list(range(1, 21)),
        "providerSettings.ideogram.remixStrength": list(range(1, 101)),
        "outputFormat": ["JPG", "PNG"],
    }
    error = error_of(
        api.post("/campaigns", json={**body, "allow_large": True}), 422, "invalid_input"
    )
    [problem] = error["errors"]
    assert problem["value"] == "2 x 2 x 20 x 100 x 2 axis values and 1 jobs = 16,001 jobs"
    assert "at most 10,000 jobs in one spec" in problem["allowed"]


def test_the_same_key_and_spec_make_one_campaign(api: Api, engine: Engine) -> None:
    key = f"spec-key-{uuid.uuid4()}"
    body = spec_body(unique())
    first = api.post("/campaigns", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    again = api.post("/campaigns", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    changed = {**body, "budget_usd": "30"}
    refused = api.post("/campaigns", json=changed, headers={"Idempotency-Key": key})
    assert error_of(refused, 409, "idempotency_key_reused")["campaign_id"] == first.json()["id"]
    with Session(engine) as session:
        count = session.scalar(
            select(func.count()).select_from(Job).where(Job.campaign_id == first.json()["id"])
        )
    assert count == 5  # nothing stored twice


def test_the_export_carries_each_images_variant(api: Api, engine: Engine) -> None:
    from remixq.models import Image

    created = api.post("/campaigns", json=spec_body(unique())).json()
    with Session(engine) as session, session.begin():
        job = session.scalars(
            select(Job).where(Job.campaign_id == created["id"]).order_by(Job.id.desc()).limit(1)
        ).one()
        session.add(
            Image(job_id=job.id, image_uuid=str(uuid.uuid4()), cost=Decimal("0.06"), raw={})
        )
    response = api.get(f"/campaigns/{created['id']}/export")
    assert response.status_code == 200, response.text
    [line] = response.text.splitlines()
    assert json.loads(line)["variant"] == {"job": 0}


def test_the_openapi_document_describes_the_spec(api: Api) -> None:
    document = api.with_key(None).get("/openapi.json").json()
    create = document["components"]["schemas"]["CampaignCreate"]["properties"]
    assert {"name", "jobs", "defaults", "matrix", "budget_usd", "allow_large"} <= set(create)
    assert "dotted field path" in create["matrix"]["description"]
    job = document["components"]["schemas"]["Job"]["properties"]
    assert "variant" in job
