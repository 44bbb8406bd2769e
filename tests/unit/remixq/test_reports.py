"""Campaign reports on both backends: progress counts jobs by status, from the rows."""

from __future__ import annotations

from sqlalchemy.orm import Session

from remixq.reports import campaign_progress
from tests.support.factories import make_job


def test_progress_counts_the_campaigns_jobs_by_status(session: Session) -> None:
    first = make_job(session, status="completed")
    for status in ("completed", "failed", "submitted"):
        make_job(session, status=status).campaign_id = first.campaign_id
    make_job(session, status="failed")  # another campaign's job is not counted
    session.flush()
    assert first.campaign_id is not None

    progress = campaign_progress(session, first.campaign_id)

    assert progress == {"completed": 2, "failed": 1, "submitted": 1}
