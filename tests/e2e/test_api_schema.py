"""Property-based conformance of the REST API to its own OpenAPI document (schemathesis): for
each operation, generated requests (valid and invalid) against a real `remixq receiver` on
PostgreSQL answer with a documented status, a JSON body matching the documented schema, and
never a server error. Short by design (few examples per operation); `make e2e` runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from remixq import migrate
from tests.support.api import JOB, Api, api_receiver, new_key
from tests.support.databases import recreate_pg_database, scratch_pg_url

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    url = scratch_pg_url("api_schema")
    recreate_pg_database(url)
    migrate.upgrade(url)
    tmp: Path = tmp_path_factory.mktemp("api-schema")
    env = {
        "REMIXQ_DATABASE_URL": url,
        "REMIXQ_WEBHOOK_SECRET": "schema-secret",
        "REMIXQ_DATA_DIR": str(tmp / "data"),
    }
    with api_receiver(env, tmp) as base:
        api = Api(base, new_key(env, tmp, "schemathesis"))
        api.create("schema-campaign", jobs=3)  # campaign 1: something for the GETs to find
        made = api.post(
            "/schedules",
            json={"name": "schema-schedule", "cron": "@daily", "spec": {"jobs": [JOB]}},
        )
        assert made.status_code == 201, made.text
        yield api


def operations(served: Api) -> list[APIOperation]:
    loaded = schemathesis.openapi.from_url(f"{served.base}/api/v1/openapi.json")
    return [result.ok() for result in loaded.get_all_operations()]


GUNICORN_REQUEST_LINE_MAX = 4094  # gunicorn's default --limit-request-line


# schemathesis' pytest integration (`from_fixture`) does not run under pytest 9 (it reads a
# node attribute pytest dropped), so each operation's strategy is driven by hypothesis here.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_conforms_to_its_document(served: Api, mode: GenerationMode) -> None:
    found = operations(served)
    assert len(found) == 24
    for operation in found:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=6,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def conforms(case: schemathesis.Case) -> None:
            response = case.call(base_url=served.base, headers=_auth(case, served.key))
            if response.status_code == 414:
                # gunicorn refuses a request line over its limit (4,094 bytes) before the app
                # sees it; a negative case sometimes repeats a query parameter that often.
                assert len(response.request.url or "") > GUNICORN_REQUEST_LINE_MAX - 20
                return
            case.validate_response(
                response,
                # A campaign's jobs are Runware requests: the document says "objects", and the
                # model rules (parse_request) refuse nearly every object a generator makes, with
                # a documented 422; every other check applies.
                excluded_checks=[positive_data_acceptance],
            )

        conforms()


def _auth(case: schemathesis.Case, key: str | None) -> dict[str, str]:
    """The key, unless the case is made invalid by leaving it out: sending it anyway would
    make a request that the document forbids valid again (a 200 that is then taken for an
    invalid request accepted)."""
    meta = case.meta
    if (
        meta is not None
        and meta.is_negative_at(ParameterLocation.HEADER)
        and "Authorization" not in (case.headers or {})
    ):
        return {}
    return {"Authorization": f"Bearer {key}"}


def test_the_document_describes_every_route(served: Api) -> None:
    document = served.with_key(None).get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert set(document["paths"]) == {
        "/api/v1/campaigns",
        "/api/v1/campaigns/{campaign_id}",
        "/api/v1/campaigns/{campaign_id}/jobs",
        "/api/v1/campaigns/{campaign_id}/images",
        "/api/v1/campaigns/{campaign_id}/cancel",
        "/api/v1/campaigns/{campaign_id}/pause",
        "/api/v1/campaigns/{campaign_id}/resume",
        "/api/v1/campaigns/{campaign_id}/retry",
        "/api/v1/campaigns/{campaign_id}/export",
        "/api/v1/estimates",
        "/api/v1/costs",
        "/api/v1/schedules",
        "/api/v1/schedules/{name}",
        "/api/v1/schedules/{name}/occurrences",
        "/api/v1/schedules/{name}/pause",
        "/api/v1/schedules/{name}/resume",
        "/api/v1/schedules/{name}/run",
        "/api/v1/images/{image_uuid}/content",
    }
    create = document["paths"]["/api/v1/campaigns"]["post"]
    assert {"201", "200", "401", "403", "409", "413", "415", "422"} <= set(create["responses"])
    add = document["paths"]["/api/v1/campaigns/{campaign_id}/jobs"]["post"]
    assert {"201", "200", "401", "403", "404", "409", "413", "415", "422"} <= set(add["responses"])
    patch = document["paths"]["/api/v1/campaigns/{campaign_id}"]["patch"]
    assert {"200", "403", "404", "409", "422"} <= set(patch["responses"])
    schemas = document["components"]["schemas"]
    assert {"Estimate", "CostReport", "BudgetChange", "JobsAdd", "JobsAdded"} <= set(schemas)
    assert "null: no budget" in schemas["BudgetChange"]["properties"]["budget_usd"]["description"]
