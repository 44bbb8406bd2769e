"""Storing a spec's jobs on real databases: variants and the budget kept, a retry keeping its
job's variant, and the command line's idempotency key holding under concurrent producers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from remixq import producing
from remixq.config import Settings, load_settings
from remixq.errors import InvalidInput
from remixq.idempotency import IdempotencyKeyReused
from remixq.models import Campaign, IdempotencyKey, Job
from remixq.specs import parse_spec, read_spec
from remixq.submission import Stored, store_and_enqueue
from remixq.url_policy import UrlPolicy

REFERENCE = "https://assets.example.test/inputs/tin.jpg"
SPEC = {
    "budget_usd": "12.5",
    "defaults": {
        "model": "ideogram:4@2",
        "width": 1024,
        "height": 1024,
        "inputs": {"referenceImages": [REFERENCE]},
    },
    "matrix": {
        "positivePrompt": ["a tin, autumn", "a tin, winter"],
        "providerSettings.ideogram.stylePreset": ["BRIGHT_ART", "VINTAGE_POSTER"],
    },
    "jobs": [{"positivePrompt": "one more tin"}],
}


def spec_jobs() -> list[producing.NewJob]:
    return read_spec(parse_spec(SPEC), local_images=None, urls=UrlPolicy(), max_jobs=100)


def nothing_enqueued(_sessions: sessionmaker[Session], _ids: Sequence[int]) -> None:
    """The broker's side is not under test: the jobs stay pending for the relay."""


def test_jobs_keep_their_variant_and_the_campaign_its_budget(session: Session) -> None:
    parsed = parse_spec(SPEC)
    campaign = producing.get_or_create_campaign(
        session, name=f"spec-{uuid.uuid4()}", source="s.yaml", budget_usd=parsed.budget_usd
    )
    ids = producing.create_jobs(session, campaign=campaign, new_jobs=spec_jobs())
    session.expire_all()
    assert session.get_one(Campaign, campaign.id).budget_usd == Decimal("12.5")
    stored = [session.get_one(Job, job_id) for job_id in ids]
    preset = "providerSettings.ideogram.stylePreset"
    assert [job.variant for job in stored] == [
        {"positivePrompt": prompt, preset: style}
        for prompt in ("a tin, autumn", "a tin, winter")
        for style in ("BRIGHT_ART", "VINTAGE_POSTER")
    ] + [{"job": 0}]
    # A plain request has no variant: SQL NULL, not a JSON null.
    plain = producing.create_jobs(
        session, campaign=campaign, new_jobs=[producing.NewJob(spec_jobs()[0].request)]
    )
    assert session.scalar(select(Job.id).where(Job.id == plain[0], Job.variant.is_(None)))

    session.execute(update(Job).where(Job.id == ids[1]).values(status="failed"))
    (retry,) = producing.retry_failed(session, campaign_id=campaign.id)
    assert session.get_one(Job, retry).variant == stored[1].variant


def _submit(settings: Settings, name: str, key: str, digest: str) -> Stored | Exception:
    try:
        return store_and_enqueue(
            settings,
            name=name,
            source=f"{name}.yaml",
            new_jobs=spec_jobs(),
            enqueue=nothing_enqueued,
            content_sha256=None,
            budget=Decimal("12.5"),
            idempotency_key=key,
            request_sha256=digest,
        )
    except (InvalidInput, IdempotencyKeyReused) as exc:
        return exc


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_eight_producers_with_one_key_make_one_campaign(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    settings = load_settings(database_url=url)
    name, key, digest = f"spec-{uuid.uuid4()}", f"key-{uuid.uuid4()}", "a" * 64
    barrier = threading.Barrier(8)

    def producer(_: int) -> Stored | Exception:
        barrier.wait(timeout=30)
        return _submit(settings, name, key, digest)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(producer, range(8)))
    # On SQLite a writer may find the database locked: such a producer failed whole, and
    # stored nothing; on PostgreSQL every one answers with the one campaign.
    stored = [answer for answer in answers if isinstance(answer, Stored)]
    if backend == "postgresql":
        assert len(stored) == 8, answers
    made = [answer for answer in stored if not answer.replayed]
    assert len(made) == 1 and len(made[0].job_ids) == 5
    assert {answer.campaign_id for answer in stored} == {made[0].campaign_id}
    assert all(answer.job_ids == [] for answer in stored if answer.replayed)

    again = _submit(settings, name, key, digest)
    assert isinstance(again, Stored) and again.replayed
    assert again.campaign_id == made[0].campaign_id
    other = _submit(settings, name, key, "b" * 64)
    assert isinstance(other, IdempotencyKeyReused) and other.campaign_id == made[0].campaign_id

    from remixq.db import make_engine

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            count = session.scalar(
                select(func.count()).select_from(Job).where(Job.campaign_id == made[0].campaign_id)
            )
            keys = session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == key)).all()
        assert count == 5  # nothing stored twice
        assert [(k.api_key_id, k.campaign_id) for k in keys] == [(None, made[0].campaign_id)]
    finally:
        engine.dispose()
