"""Bad input fuzzing (hypothesis): the webhook endpoint and campaign files never crash, never
answer 500, and never write an image or move a cost from a body they refuse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from remixq.campaigns import read_campaign
from remixq.errors import InvalidInput
from remixq.models import Image, Job
from remixq.providers.ideogram import parse_request as parse_ideogram_request
from remixq.providers.runware import parse_request
from remixq.security import webhook_token
from tests.support.factories import new_job
from tests.support.webhooks import receiver_client

SECRET = "fuzz-secret"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "taskUUID",
    "imageUUID",
    "imageURL",
    "seed",
    "cost",
    "NSFWContent",
    "status",
    "code",
    "message",
    "data",
    "errors",
    "taskType",
]


@st.composite
def webhook_bodies(draw: st.DrawFn, task_uuid: str) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "item", "envelope"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    item = draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6))
    if draw(st.booleans()):
        item["taskUUID"] = task_uuid
    if kind == "envelope":
        return json.dumps({draw(st.sampled_from(["data", "errors"])): [item]}).encode()
    return json.dumps(item).encode()


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[FlaskClient]:
    with receiver_client(engine, tmp_path, secret=SECRET) as test_client:
        yield test_client


def totals(engine: Engine, task_uuid: str) -> tuple[Any, ...]:
    with Session(engine) as session:
        job = session.scalar(select(Job).where(Job.task_uuid == task_uuid))
        assert job is not None
        images = session.scalar(select(func.count()).where(Image.job_id == job.id))
        cost = session.scalar(select(func.sum(Image.cost)).where(Image.job_id == job.id))
        return job.status, job.results_received, images, cost


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_webhook_endpoint_survives_any_body(client: FlaskClient, engine: Engine) -> None:
    task_uuid = new_job(engine, number_results=20)
    url = f"/webhooks/runware?task={task_uuid}&token={webhook_token(SECRET.encode(), task_uuid)}"

    @FUZZ
    @given(body=webhook_bodies(task_uuid))
    def post(body: bytes) -> None:
        before = totals(engine, task_uuid)
        response = client.post(url, data=body, content_type="application/json")
        assert response.status_code < 500, response.json
        assert response.is_json and ("error" in response.json or "status" in response.json)
        if response.status_code >= 400:
            assert totals(engine, task_uuid) == before

    post()


@FUZZ
@given(
    lines=st.lists(st.one_of(st.text(max_size=80), json_values.map(json.dumps)), max_size=5),
    suffix=st.sampled_from([".jsonl", ".csv"]),
)
def test_campaign_files_give_invalid_input_or_jobs(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], suffix: str
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"campaign{suffix}"
    path.write_text("\n".join(line.replace("\n", " ") for line in lines))
    try:
        jobs = read_campaign(path)
    except InvalidInput as exc:
        assert exc.errors and str(exc)  # noqa: PT017 (either outcome is fine; a crash is not)
    else:
        assert jobs


@FUZZ
@given(
    request=st.dictionaries(
        st.sampled_from(
            [
                "model",
                "positivePrompt",
                "width",
                "height",
                "inputs",
                "numberResults",
                "providerSettings",
                "settings",
                "strength",
                "outputType",
                "ttl",
            ]
        ),
        json_values,
        max_size=8,
    )
)
def test_requests_are_parsed_or_refused_with_named_fields(request: dict[str, Any]) -> None:
    try:
        parse_request(request)
    except InvalidInput as exc:
        assert all(error.field and error.allowed for error in exc.errors)  # noqa: PT017


@FUZZ
@given(
    request=st.dictionaries(
        st.sampled_from(
            [
                "image",
                "prompt",
                "image_weight",
                "seed",
                "resolution",
                "aspect_ratio",
                "num_images",
                "color_palette",
                "style_codes",
                "style_type",
                "style_reference_images",
                "character_reference_images",
                "character_reference_images_mask",
                "taskUUID",
            ]
        ),
        json_values,
        max_size=8,
    )
)
def test_ideogram_requests_are_parsed_or_refused_with_named_fields(
    request: dict[str, Any],
) -> None:
    try:
        parse_ideogram_request(request)
    except InvalidInput as exc:
        assert all(error.field and error.allowed for error in exc.errors)  # noqa: PT017
