"""Producers on real databases: canonical taskUUIDs, insert-or-ignore under concurrent producers,
content already submitted, campaign references, and reports that count a job's latest attempt."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from remixq import jobs, producing
from remixq.db import make_engine, transaction
from remixq.errors import InvalidInput
from remixq.examples import campaign_lines
from remixq.models import Campaign, Job
from remixq.providers.runware import parse_request
from remixq.providers.runware.testing import FakeTransport, reply
from remixq.reports import campaign_report, find_campaign
from tests.support.worker import worker_runtime, worker_settings
from worker.app import create_celery
from worker.names import SUBMIT_TASK
from worker.runtime import Runtime

UPPER = "6BA7B826-9DAD-41D1-80B4-00C04FD430C8"
LOWER = UPPER.lower()


def line(task_uuid: str | None = None) -> producing.NewJob:
    row = dict(campaign_lines(1)[0])
    if task_uuid is not None:
        row["taskUUID"] = task_uuid
    return producing.NewJob(parse_request(row), "line 1")


def store(
    session: Session, name: str, *new: producing.NewJob, digest: str | None = None
) -> list[int]:
    campaign = producing.get_or_create_campaign(
        session, name=name, source=f"{name}.jsonl", content_sha256=digest
    )
    return producing.create_jobs(session, campaign=campaign, new_jobs=new)


# --- item 3: one taskUUID, one spelling ---------------------------------------------------------


def test_a_given_task_uuid_is_stored_and_sent_in_lowercase(session: Session) -> None:
    (job_id,) = store(session, f"c-{uuid.uuid4()}", line(UPPER))
    job = session.get_one(Job, job_id)
    assert str(job.task_uuid) == LOWER
    assert job.request["taskUUID"] == LOWER
    assert "webhookURL" not in job.request  # the worker adds its own at hand-off


def test_two_spellings_of_one_task_uuid_are_one(session: Session) -> None:
    with pytest.raises(InvalidInput, match="used once only; it is also on line 1"):
        store(session, f"c-{uuid.uuid4()}", line(UPPER), line(LOWER))
    store(session, "first", line(LOWER))
    with pytest.raises(InvalidInput, match="already used by campaign 'first'"):
        store(session, "second", line(UPPER))


@pytest.fixture
def runtime(engine: Engine) -> Iterator[tuple[Runtime, FakeTransport]]:
    with worker_runtime(worker_settings(engine)) as parts:
        yield parts


def test_an_uppercase_task_uuid_is_matched_by_its_acknowledgement(
    runtime: tuple[Runtime, FakeTransport],
) -> None:
    run, transport = runtime
    given = str(uuid.uuid4()).upper()
    with transaction(run.sessions) as session:
        (job_id,) = store(session, f"upper-{given}", line(given))
        jobs.mark_enqueued(session, job_ids=[job_id])
    app = create_celery(run.settings, runtime=run)
    task = app.tasks[SUBMIT_TASK]
    transport.script.append(_echo(job_id, run))
    task.push_request(id="t", args=[[job_id]], kwargs={}, retries=0, is_eager=True)
    try:
        assert task.run([job_id]) == {"submitted": 1, "failed": 0}
    finally:
        task.pop_request()
        app.close()
    assert [t["taskUUID"] for t in transport.body()] == [given.lower()]
    with Session(run.engine) as session:
        job = session.get_one(Job, job_id)
        assert (job.status, str(job.task_uuid), job.attempts) == ("submitted", given.lower(), 1)


def _echo(job_id: int, run: Runtime) -> Any:
    """The provider's acknowledgement of the task stored for `job_id`: it echoes the taskUUID
    exactly as the task spells it."""
    with Session(run.engine) as session:
        sent = session.get_one(Job, job_id).request["taskUUID"]
    return reply(200, {"data": [{"taskType": "imageInference", "taskUUID": sent}]})


# --- item 4: concurrent producers ---------------------------------------------------------------


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    with engine.begin() as connection:
        connection.execute(
            text(
                "DELETE FROM jobs WHERE campaign_id IN"
                " (SELECT id FROM campaigns WHERE name LIKE 'race-%')"
            )
        )
        connection.execute(text("DELETE FROM campaigns WHERE name LIKE 'race-%'"))
    engine.dispose()


def _race(engine: Engine, second: Any, first: Any) -> Any:
    """`first` runs in an open transaction; `second` starts in another one meanwhile (and blocks
    on the first's rows); the first commits; returns what `second` returned or raised."""
    started = threading.Event()
    with Session(engine) as holder, holder.begin():
        first(holder)
        with ThreadPoolExecutor(1) as pool:

            def run() -> Any:
                with Session(engine) as session, session.begin():
                    session.execute(text("SET LOCAL lock_timeout = '20s'"))
                    started.set()
                    try:
                        return second(session)
                    except InvalidInput as exc:
                        return exc

            future = pool.submit(run)
            assert started.wait(10)
            waiting = _wait_for_lock(engine)
            holder.commit()
            outcome = future.result(timeout=30)
    assert waiting, "the second producer never waited on the first"
    return outcome


def _wait_for_lock(engine: Engine) -> bool:
    import time

    deadline = time.monotonic() + 10
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            locked = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
            )
            if locked:
                return True
            time.sleep(0.02)
    return False


def test_a_task_uuid_raced_by_two_producers_is_a_field_error(pg: Engine) -> None:
    given = str(uuid.uuid4())
    outcome = _race(
        pg,
        second=lambda s: store(s, f"race-b-{given}", line(given)),
        first=lambda s: store(s, f"race-a-{given}", line(given)),
    )
    assert isinstance(outcome, InvalidInput), outcome
    assert f"taskUUID: '{given}'" in str(outcome)
    assert f"already used by campaign 'race-a-{given}'" in str(outcome)


def test_one_campaign_name_raced_by_two_producers_is_one_campaign(pg: Engine) -> None:
    name = f"race-{uuid.uuid4()}"
    outcome = _race(
        pg, second=lambda s: store(s, name, line()), first=lambda s: store(s, name, line())
    )
    assert not isinstance(outcome, InvalidInput), outcome
    with Session(pg) as session:
        (campaign,) = session.scalars(select(Campaign).where(Campaign.name == name))
        assert len(campaign.jobs) == 2


def test_one_file_raced_by_two_producers_is_stored_once(pg: Engine) -> None:
    digest = uuid.uuid4().hex * 2
    outcome = _race(
        pg,
        second=lambda s: store(s, f"race-b-{digest}", line(), digest=digest),
        first=lambda s: store(s, f"race-a-{digest}", line(), digest=digest),
    )
    assert isinstance(outcome, InvalidInput), outcome
    assert f"the same content is campaign 'race-a-{digest}'" in str(outcome)


# --- item 2: content already stored -------------------------------------------------------------


def test_the_same_content_is_refused_naming_its_campaign(session: Session) -> None:
    digest = uuid.uuid4().hex * 2
    store(session, "spring", line(), digest=digest)
    with pytest.raises(InvalidInput, match=r"FILE: 'autumn.jsonl' .*campaign 'spring' \(id \d+\)"):
        store(session, "autumn", line(), digest=digest)
    store(session, "autumn", line())  # a second copy, asked for: no digest


# --- item 5: campaign references ----------------------------------------------------------------


def test_a_campaign_named_like_an_id_is_found_by_its_name(session: Session) -> None:
    first = producing.get_or_create_campaign(session, name=f"c-{uuid.uuid4()}", source=None)
    named = producing.get_or_create_campaign(session, name=str(first.id), source=None)
    assert named.id != first.id
    assert find_campaign(session, str(first.id)) == named  # an exact name wins
    assert find_campaign(session, f"#{first.id}") == first  # "#N" is always the id
    assert find_campaign(session, f"#{named.id}") == named
    assert find_campaign(session, str(named.id + 1000)) is None


def test_a_number_that_names_no_campaign_is_an_id(session: Session) -> None:
    campaign = producing.get_or_create_campaign(session, name=f"c-{uuid.uuid4()}", source=None)
    assert find_campaign(session, str(campaign.id)) == campaign


# --- item 6: a retried job counts as its retry --------------------------------------------------


def test_a_report_counts_the_latest_attempt_of_each_job(session: Session) -> None:
    name = f"c-{uuid.uuid4()}"
    done, failed = store(session, name, line(), line())
    session.execute(
        Job.__table__.update().where(Job.id.in_([done, failed])).values(status="completed")
    )
    session.execute(
        Job.__table__.update()
        .where(Job.id == failed)
        .values(status="failed", error_code="timeoutProvider", error_message="slow")
    )
    campaign = find_campaign(session, name)
    assert campaign is not None
    before = campaign_report(session, campaign)
    assert (before["counts"], before["outcome"]) == ({"completed": 1, "failed": 1}, "failed")

    (retry,) = producing.retry_failed(session, campaign_id=campaign.id)
    session.execute(Job.__table__.update().where(Job.id == retry).values(status="completed"))
    session.expire_all()
    after = campaign_report(session, campaign)

    assert (after["counts"], after["outcome"]) == ({"completed": 2}, "completed")
    old = session.get_one(Job, failed)
    new = session.get_one(Job, retry)
    assert [job["task_uuid"] for job in after["jobs"]] == [
        str(session.get_one(Job, done).task_uuid),
        str(new.task_uuid),
    ]
    assert after["jobs"][1]["retry_of"] == str(old.task_uuid)
    (superseded,) = after["superseded"]
    assert superseded["task_uuid"] == str(old.task_uuid)
    assert superseded["retried_as"] == str(new.task_uuid)
    assert superseded["error"] == {"code": "timeoutProvider", "message": "slow"}
