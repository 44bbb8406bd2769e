"""A campaign by variant (`remixq status --by variant`) on both backends: each variant's latest
attempts by status, its images and spend over every attempt, in the order of its first job."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import update
from sqlalchemy.orm import Session

from remixq import producing
from remixq.models import Image, Job
from remixq.providers.runware import parse_request
from remixq.specs import parse_spec, read_spec
from remixq.url_policy import UrlPolicy
from remixq.variants import by_variant

REQUEST = {
    "model": "ideogram:4@2",
    "positivePrompt": "a tin",
    "width": 1024,
    "height": 1024,
    "inputs": {"referenceImages": ["https://assets.example.test/inputs/tin.jpg"]},
}
SPEC = {
    "defaults": REQUEST,
    "matrix": {
        "providerSettings.ideogram.stylePreset": ["VINTAGE_POSTER", "BRIGHT_ART"],
        "numberResults": [2, 1],
    },
    "jobs": [{"positivePrompt": "one more"}],
}


def image(session: Session, job_id: int, cost: str) -> None:
    session.add(Image(job_id=job_id, image_uuid=str(uuid.uuid4()), cost=Decimal(cost), raw={}))
    session.flush()


def test_variants_with_their_jobs_images_and_spend(session: Session) -> None:
    campaign = producing.get_or_create_campaign(session, name=f"v-{uuid.uuid4()}", source="v")
    new = read_spec(parse_spec(SPEC), local_images=None, urls=UrlPolicy(), max_jobs=10)
    ids = producing.create_jobs(session, campaign=campaign, new_jobs=new)
    # A plain request too, stored after the spec's jobs.
    (plain,) = producing.create_jobs(
        session, campaign=campaign, new_jobs=[producing.NewJob(parse_request(REQUEST))]
    )
    # The first variant: its job completed, both images above the estimate (0.06 each).
    image(session, ids[0], "0.07")
    image(session, ids[0], "0.07")
    # The second: failed, one image charged, then retried (the retry keeps its variant).
    image(session, ids[1], "0.06")
    session.execute(update(Job).where(Job.id == ids[0]).values(status="completed"))
    session.execute(update(Job).where(Job.id == ids[1]).values(status="failed"))
    (retry,) = producing.retry_failed(session, campaign_id=campaign.id)
    session.execute(update(Job).where(Job.id == retry).values(status="submitted"))

    variants = by_variant(session, campaign.id)
    preset = "providerSettings.ideogram.stylePreset"
    assert [v.variant for v in variants] == [
        {preset: "VINTAGE_POSTER", "numberResults": 2},
        {preset: "VINTAGE_POSTER", "numberResults": 1},
        {preset: "BRIGHT_ART", "numberResults": 2},
        {preset: "BRIGHT_ART", "numberResults": 1},
        {"job": 0},
        None,
    ]
    first, second = variants[0].to_json(), variants[1].to_json()
    assert first == {
        "variant": {preset: "VINTAGE_POSTER", "numberResults": 2},
        "jobs": 1,
        "counts": {"completed": 1},
        "images": 2,
        "estimated_usd": "0.12",
        "reserved_usd": "0.00",
        "spent_usd": "0.14",
        "overrun_usd": "0.02",
        "spent_estimated_usd": "0.00",  # Runware reported every cost
    }
    # Jobs count the latest attempt only; images and USD every attempt (both were paid).
    assert (second["jobs"], second["counts"], second["images"]) == (1, {"submitted": 1}, 1)
    assert (second["estimated_usd"], second["reserved_usd"], second["spent_usd"]) == (
        "0.12", "0.06", "0.06"
    )  # fmt: skip
    assert variants[-1].counts == {"pending": 1} and variants[-1].spend.jobs == 1
    assert sum(v.jobs for v in variants) == len(ids) + 1
    assert plain not in ids


def test_a_campaign_without_jobs_has_no_variants(session: Session) -> None:
    campaign = producing.get_or_create_campaign(session, name=f"v-{uuid.uuid4()}", source="v")
    assert by_variant(session, campaign.id) == []
