"""Submitting work: a campaign's jobs stored and then handed to the queue, and failed jobs
retried the same way.

The domain cannot import Celery, so the enqueue step is a callable the edge composes (the CLI
passes the worker's producer, `worker.app.enqueuer`). It is called only after the jobs are
committed; if it never runs (the process dies), the jobs stay pending and the relay enqueues them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from remixq import jobs
from remixq.config import Settings
from remixq.db import database, transaction
from remixq.errors import FieldError, InvalidInput
from remixq.reports import find_campaign

# Publishes the committed jobs' ids and marks them queued, with sessions on their database.
Enqueue = Callable[[sessionmaker[Session], Sequence[int]], None]


def store_and_enqueue(
    settings: Settings,
    *,
    name: str,
    source: str,
    new_jobs: Sequence[jobs.NewJob],
    enqueue: Enqueue,
) -> tuple[int, list[int]]:
    """Store the jobs in campaign `name` (made if new) in one transaction, then enqueue them;
    returns the campaign's id and the new jobs' ids."""
    with database(settings) as sessions:
        with transaction(sessions) as session:
            campaign = jobs.get_or_create_campaign(session, name=name, source=source)
            job_ids = jobs.create_jobs(session, campaign=campaign, new_jobs=new_jobs)
            campaign_id = campaign.id
        enqueue(sessions, job_ids)
    return campaign_id, job_ids


def retry_and_enqueue(
    settings: Settings,
    *,
    campaign: str | None,
    task_uuid: str | None,
    enqueue: Enqueue,
) -> list[int]:
    """New attempts, with new taskUUIDs, for the failed jobs of `campaign` (id or name) or the
    one failed job `task_uuid`, then enqueue them; returns the new jobs' ids."""
    with database(settings) as sessions:
        with transaction(sessions) as session:
            campaign_id = None
            if campaign is not None:
                found = find_campaign(session, campaign)
                if found is None:
                    raise InvalidInput([no_campaign(campaign)])
                campaign_id = found.id
            job_ids = jobs.retry_failed(session, campaign_id=campaign_id, task_uuid=task_uuid)
        if job_ids:
            enqueue(sessions, job_ids)
    return job_ids


def no_campaign(ref: str | None) -> FieldError:
    """The refusal of a campaign reference that names no campaign."""
    return FieldError("CAMPAIGN", ref, "the id or name of an existing campaign")
