"""The job factory of the tests: a job row as the worker leaves it once the provider has
acknowledged it (`submitted`), ready for webhooks, polls and transitions."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from remixq.models import Campaign, Job


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
