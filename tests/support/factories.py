"""The job factory of the tests: a job row as the worker leaves it once the provider has
acknowledged it (`submitted`), ready for webhooks, polls and transitions."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from remixq.models import Campaign, Job
from remixq.states import OPEN


def make_job(
    session: Session,
    *,
    number_results: int = 1,
    status: str = "submitted",
    in_campaign: bool = True,
    model: str = "ideogram:1@2",
) -> Job:
    """A job in `session` (flushed, not committed), in a campaign of its own unless told not."""
    campaign_id = None
    if in_campaign:
        campaign = Campaign(name=f"c-{uuid.uuid4()}")
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    job = Job(
        campaign_id=campaign_id,
        task_uuid=str(uuid.uuid4()),
        model=model,
        request={"model": model},
        number_results=number_results,
        status=status,
    )
    session.add(job)
    session.flush()
    return job


def new_job(engine: Engine, number_results: int = 1) -> str:
    """A committed submitted job outside any campaign, as a webhook finds it; its taskUUID."""
    with Session(engine) as session, session.begin():
        job = make_job(
            session, number_results=number_results, in_campaign=False, model="ideogram:4@2"
        )
        return str(job.task_uuid)


def make_campaign(session: Session, *statuses: str, name: str | None = None) -> Campaign:
    """A campaign (flushed) with one job in each of `statuses`, in that order."""
    campaign = Campaign(name=name or f"c-{uuid.uuid4()}")
    session.add(campaign)
    session.flush()
    for status in statuses:
        session.add(
            Job(
                campaign_id=campaign.id,
                task_uuid=str(uuid.uuid4()),
                model="ideogram:1@2",
                request={"model": "ideogram:1@2", "positivePrompt": "a remix", "width": 1024},
                number_results=1,
                status=status,
            )
        )
    session.flush()
    return campaign


def bulk_campaign(
    session: Session, *, jobs: int, images_per_job: int = 1, status: str = "completed"
) -> int:
    """A campaign of `jobs` jobs with `images_per_job` images each, inserted fast in SQL (in
    `session`'s transaction, not committed); its id."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from sqlalchemy import insert, select

    from remixq.models import Image

    campaign = Campaign(name=f"bulk-{uuid.uuid4()}")
    session.add(campaign)
    session.flush()
    now = datetime.now(UTC)
    request = {"model": "ideogram:1@2", "positivePrompt": "a remix of the product", "width": 1024}
    for start in range(0, jobs, 5000):
        session.execute(
            insert(Job),
            [
                {
                    "campaign_id": campaign.id,
                    "task_uuid": str(uuid.uuid4()),
                    "model": "ideogram:1@2",
                    "request": request,
                    "number_results": images_per_job,
                    "results_received": images_per_job,
                    "status": status,
                    "created_at": now,
                    "updated_at": now,
                }
                for _ in range(start, min(jobs, start + 5000))
            ],
        )
    job_ids = list(
        session.scalars(select(Job.id).where(Job.campaign_id == campaign.id).order_by(Job.id))
    )
    rows = [
        {
            "job_id": job_id,
            "image_uuid": str(uuid.uuid4()),
            "image_url": f"https://im.example/{job_id}-{n}.jpg",
            "seed": job_id,
            "nsfw": False,
            "cost": Decimal("0.0400"),
            "raw": {},
            "created_at": now,
        }
        for job_id in job_ids
        for n in range(images_per_job)
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(Image), rows[start : start + 5000])
    return campaign.id


def add_image(
    session: Session,
    job: Job,
    *,
    url: str | None = "https://im.runware.ai/image/x.jpg",
    raw: dict[str, object] | None = None,
    created_at: object = None,
) -> int:
    """An image row of `job` as ingestion writes it (its asset pending by default); its id."""
    from remixq.models import Image

    image_uuid = str(uuid.uuid4())
    image = Image(
        job_id=job.id,
        image_uuid=image_uuid,
        image_url=url,
        raw=raw if raw is not None else {"imageUUID": image_uuid, "imageURL": url},
    )
    if created_at is not None:
        image.created_at = created_at  # type: ignore[assignment]
    session.add(image)
    session.flush()
    return image.id


def park_other_open_jobs(session: Session) -> None:
    """Other tests' committed leftovers in the shared test database, failed inside this test's
    transaction (rolled back with it): a relay or reconciler round that counts or takes open
    jobs then sees only the test's own."""
    open_ = sorted(status.value for status in OPEN)
    session.execute(update(Job).where(Job.status.in_(open_)).values(status="failed"))
