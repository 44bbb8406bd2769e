"""Producers with Ideogram's native API: a line's ``provider`` picks the schema; jobs store the
provider, the model, Ideogram's own fields and the estimate; a bad line is refused with its
location, field, value and what is allowed; files, CSV, specs, API bodies and retries alike."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from remixq import producing
from remixq.campaigns import read_campaign, read_campaign_text, read_requests
from remixq.errors import FieldError, InvalidInput
from remixq.estimates import estimate_jobs
from remixq.examples import campaign_lines
from remixq.models import Image, Job
from remixq.pricing import PriceTable
from remixq.providers import PROVIDERS, provider_for
from remixq.reports import export_rows
from remixq.specs import parse_spec, read_spec
from remixq.states import JobStatus
from remixq.url_policy import UrlPolicy
from tests.support.ideogram_requests import PNG, data_uri, line
from tests.support.images import png_bytes

RUNWARE = campaign_lines(1)[0]


def jsonl(*rows: dict[str, Any]) -> str:
    return "\n".join(json.dumps(row) for row in rows) + "\n"


def store(session: Session, new_jobs: list[producing.NewJob]) -> list[Job]:
    campaign = producing.get_or_create_campaign(
        session, name=f"c-{uuid.uuid4()}", source="mixed.jsonl"
    )
    ids = producing.create_jobs(session, campaign=campaign, new_jobs=new_jobs)
    return [session.get_one(Job, job_id) for job_id in ids]


def test_a_mixed_file_stores_each_job_with_its_provider(session: Session) -> None:
    text = jsonl(
        RUNWARE,
        line(num_images=3, rendering_speed="QUALITY", seed=5),
        {**RUNWARE, "provider": "runware"},
        line(),
    )
    new_jobs = read_campaign_text(text, "mixed.jsonl", local_images=None)
    assert [new.provider for new in new_jobs] == ["runware", "ideogram", "runware", "ideogram"]
    runware, ideogram, named_runware, plain = store(session, new_jobs)

    assert (runware.provider, runware.model) == ("runware", RUNWARE["model"])
    assert named_runware.provider == "runware" and "provider" not in named_runware.request
    assert (ideogram.provider, ideogram.model) == ("ideogram", "ideogram-v3-remix")
    assert ideogram.request == {
        "image": PNG,
        "prompt": "A seaside ticket booth",
        "seed": 5,
        "rendering_speed": "QUALITY",
        "num_images": 3,
    }
    assert ideogram.number_results == 3
    assert ideogram.estimated_cost == Decimal("0.27")  # 3 x QUALITY 0.09
    assert plain.estimated_cost == Decimal("0.06") and plain.number_results == 1
    assert uuid.UUID(str(ideogram.task_uuid)).version == 4  # our own key, never sent
    assert ideogram.status == JobStatus.PENDING.value


def test_a_given_task_uuid_is_the_ideogram_jobs_key(session: Session) -> None:
    given = str(uuid.uuid4())
    (job,) = store(session, read_requests([line(taskUUID=given.upper())]))
    assert str(job.task_uuid) == given and "taskUUID" not in job.request
    with pytest.raises(InvalidInput, match="already used by campaign"):
        store(session, read_requests([line(taskUUID=given)]))


def test_a_bad_ideogram_line_is_located_and_explained() -> None:
    text = jsonl(RUNWARE, line(num_images=9), line(positivePrompt="x"))
    with pytest.raises(InvalidInput) as caught:
        read_campaign_text(text, "mixed.jsonl", local_images=None)
    assert caught.value.errors == [
        FieldError("num_images", 9, "an integer from 1 to 8", "line 2"),
        FieldError(
            "positivePrompt",
            "x",
            "`positivePrompt` is a Runware field; with provider ideogram use prompt",
            "line 3",
        ),
    ]
    assert str(caught.value).startswith("line 2: num_images: 9 is not allowed; an integer from")


def test_an_unknown_provider_is_refused_with_the_names_allowed() -> None:
    with pytest.raises(InvalidInput) as caught:
        read_campaign_text(
            jsonl({**RUNWARE, "provider": "midjourney"}), "x.jsonl", local_images=None
        )
    assert caught.value.errors == [
        FieldError("provider", "midjourney", "one of runware, ideogram", "line 1")
    ]
    with pytest.raises(InvalidInput, match="provider: 'midjourney' is not allowed"):
        provider_for("midjourney")
    assert set(PROVIDERS) == {"runware", "ideogram"}


def test_a_local_image_is_inlined_as_a_data_uri(tmp_path: Path) -> None:
    (tmp_path / "in.png").write_bytes(png_bytes())
    (tmp_path / "c.jsonl").write_text(
        jsonl(line(image="in.png", style_reference_images=["in.png"]))
    )
    (new,) = read_campaign(tmp_path / "c.jsonl")
    stored = provider_for("ideogram").build_task(new.request, task_uuid=str(uuid.uuid4()))
    assert stored["image"] == data_uri(png_bytes())
    assert stored["style_reference_images"] == [data_uri(png_bytes())]


def test_an_api_body_never_reads_a_local_file() -> None:
    with pytest.raises(InvalidInput) as caught:
        read_requests([line(image="/etc/passwd")])
    (error,) = caught.value.errors
    assert (error.field, error.location) == ("image", "requests[0]")
    assert error.allowed == (
        "a data:image/...;base64 URI or an https URL (local files are not read here)"
    )


def test_an_image_url_is_held_to_the_url_policy() -> None:
    policy = UrlPolicy(refuse_private=True, resolve=lambda _host: ["127.0.0.1"])
    with pytest.raises(InvalidInput, match=r"image: 'https://img\.example\.test/a\.png'"):
        read_requests([line(image="https://img.example.test/a.png")], urls=policy)


def test_a_csv_row_names_its_provider() -> None:
    text = (
        f'provider,prompt,image,num_images,style_codes\nideogram,123,"{PNG}",2,1A2B3C4D|DEADBEEF\n'
    )
    (new,) = read_campaign_text(text, "c.csv", local_images=None)
    stored = provider_for(new.provider).build_task(new.request, task_uuid=str(uuid.uuid4()))
    assert stored == {
        "image": PNG,
        "prompt": "123",  # a prompt stays text
        "num_images": 2,
        "style_codes": ["1A2B3C4D", "DEADBEEF"],
    }


def test_a_spec_may_run_a_matrix_through_ideogram() -> None:
    spec = parse_spec(
        {
            "defaults": {"provider": "ideogram", "image": PNG, "prompt": "a tea tin"},
            "matrix": {"rendering_speed": ["TURBO", "FAST"]},
        }
    )
    with pytest.raises(InvalidInput) as caught:
        read_spec(spec, local_images=None, urls=UrlPolicy(), max_jobs=10)
    (error,) = caught.value.errors
    assert (error.field, error.value) == ("rendering_speed", "FAST")
    assert error.location == 'matrix {rendering_speed: "FAST"}'


def test_estimates_count_each_provider_at_its_prices() -> None:
    new_jobs = read_requests(
        [RUNWARE, line(num_images=2, rendering_speed="FLASH"), line(rendering_speed="TURBO")]
    )
    estimate = estimate_jobs(new_jobs, PriceTable.default())
    assert estimate.total.jobs == 3 and estimate.total.images == 4
    ideogram = estimate.by_model["ideogram-v3-remix"]
    assert (ideogram.jobs, ideogram.images, ideogram.cost) == (2, 3, Decimal("0.06"))
    table = PriceTable.from_mapping({"ideogram-v3-remix": {"FLASH": "0.02"}})
    assert estimate_jobs(new_jobs, table).by_model["ideogram-v3-remix"].cost == Decimal("0.07")


def test_the_price_table_knows_ideograms_speeds() -> None:
    with pytest.raises(InvalidInput) as caught:
        PriceTable.from_mapping({"ideogram-v3-remix": {"HYPER": 1}, "ideogram:4@2": {"FLASH": 1}})
    assert [(e.field, e.allowed) for e in caught.value.errors] == [
        ("ideogram-v3-remix.HYPER", "a rendering speed: one of FLASH, TURBO, DEFAULT, QUALITY"),
        ("ideogram:4@2.FLASH", "a rendering speed: one of TURBO, DEFAULT, QUALITY"),
    ]


def test_a_retry_keeps_the_provider_and_the_request(session: Session) -> None:
    (job,) = store(session, read_requests([line(num_images=2)]))
    session.execute(update(Job).where(Job.id == job.id).values(status=JobStatus.FAILED.value))
    (retry_id,) = producing.retry_failed(session, campaign_id=job.campaign_id)
    retry = session.get_one(Job, retry_id)
    assert (retry.provider, retry.model, retry.request) == ("ideogram", job.model, job.request)
    assert retry.task_uuid != job.task_uuid and retry.estimated_cost == Decimal("0.12")


def test_an_export_reads_each_jobs_prompt_where_its_provider_keeps_it(session: Session) -> None:
    runware, ideogram = store(
        session, read_requests([RUNWARE, line(num_images=1, seed=9, rendering_speed="TURBO")])
    )
    for job in (runware, ideogram):
        session.add(
            Image(job_id=job.id, image_uuid=str(uuid.uuid4()), image_url="https://x.test/i.png",
                  seed=1, raw={})
        )  # fmt: skip
    session.flush()
    rows = {row["job_id"]: row for row in export_rows(session, ideogram.campaign_id)}
    assert rows[runware.id]["prompt"] == RUNWARE["positivePrompt"]
    assert "positivePrompt" not in rows[runware.id]["parameters"]
    assert rows[ideogram.id]["prompt"] == "A seaside ticket booth"
    assert rows[ideogram.id]["model"] == "ideogram-v3-remix"
    assert (rows[runware.id]["provider"], rows[runware.id]["cost_estimated"]) == ("runware", False)
    assert (rows[ideogram.id]["provider"], rows[ideogram.id]["cost_estimated"]) == (
        "ideogram",
        True,
    )
    parameters = {"image": PNG, "num_images": 1, "seed": 9, "rendering_speed": "TURBO"}
    assert rows[ideogram.id]["parameters"] == parameters
