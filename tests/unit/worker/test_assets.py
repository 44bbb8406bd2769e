"""The fetch task's work (`worker.assets.fetch`) against a real local image host, a fresh
database of each backend and a folder of storage: every fault ends stored or with a recorded
reason, and nothing is stored twice."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from remixq import migrate
from remixq.assets import claims
from remixq.assets.policy import HostRule
from remixq.db import make_engine, utcnow
from remixq.models import Image
from tests.support.databases import empty_database
from tests.support.factories import add_image, make_job
from tests.support.image_host import ImageHost, Reply, image_host
from tests.support.images import jpeg_bytes, png_bytes
from tests.support.worker import worker_runtime, worker_settings
from worker.app import create_celery
from worker.assets import FETCH_BATCH, MAX_FETCH_BATCH, fetch, fetch_batch
from worker.names import ASSET_SWEEP_TASK, ASSETS_QUEUE, PERIODIC_QUEUE
from worker.runtime import Runtime

JPEG = jpeg_bytes((40, 30))


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A database of its own: the sweep takes every pending image, so no other test's rows."""
    url = empty_database(request.param, tmp_path_factory.mktemp("assets"), "assets_worker")
    migrate.upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@dataclass
class Rig:
    engine: Engine
    host: ImageHost
    runtime: Runtime
    images: Path

    def image(self, url: str | None, **request: Any) -> int:
        raw = request.pop("_raw", None)
        with Session(self.engine) as session, session.begin():
            job = make_job(session)
            job.request = {"model": job.model, **request}
            return add_image(session, job, url=url, raw=raw)

    def round(self, *, ahead: float = 0.0) -> dict[str, int]:
        """One sweep (as if `ahead` seconds later) and the fetches of what it handed over."""
        with Session(self.engine) as session, session.begin():
            handover = claims.hand_over(
                session,
                now=utcnow() + timedelta(seconds=ahead),
                lease=timedelta(seconds=60),
                in_flight=100,
            )
        return fetch(self.runtime, handover.token, handover.image_ids)

    def row(self, image_id: int) -> Image:
        with Session(self.engine) as session:
            found = session.scalar(select(Image).where(Image.id == image_id))
            assert found is not None
            return found

    def files(self) -> list[Path]:
        return sorted(p for p in self.images.rglob("*") if p.is_file())


@contextmanager
def rigged(db: Engine, tmp_path: Path, **settings: Any) -> Iterator[Rig]:
    """A rig whose worker has `settings` over the test's."""
    with db.begin() as connection:  # what an earlier test left pending is not ours
        connection.execute(Image.__table__.update().values(asset_status="failed"))
    with image_host() as host:
        made = worker_settings(
            db,
            data_dir=tmp_path,
            storage_url=(tmp_path / "images").as_uri(),
            image_local_hosts=f"127.0.0.1:{host.port}",
            **settings,
        )
        with worker_runtime(made) as (runtime, _):
            yield Rig(db, host, runtime, tmp_path / "images")


@pytest.fixture
def rig(db: Engine, tmp_path: Path) -> Iterator[Rig]:
    with rigged(
        db, tmp_path, asset_backoff_base=0.001, asset_backoff_cap=0.001, asset_max_attempts=4
    ) as made:
        yield made


def break_the_resolver(runtime: Runtime) -> None:
    """Allow host boom.test, whose name service (the outer boundary) raises as it never
    should: a copy that raises out of the fetch task."""

    def broken(name: str) -> list[str]:
        raise RuntimeError(f"resolver broke on {name}")

    policy = runtime.fetch_policy
    runtime.__dict__["fetch_policy"] = dataclasses.replace(
        policy, local_hosts=(*policy.local_hosts, HostRule("boom.test")), resolve=broken
    )


def test_a_fetched_image_is_stored_once_with_what_it_is(rig: Rig) -> None:
    url = rig.host.route("/a.jpg", Reply(200, JPEG, {"Content-Type": "text/plain"}))
    first, second = rig.image(url), rig.image(url)  # two results, identical bytes
    assert rig.round() == {"stored": 2, "retry": 0, "failed": 0, "refused": 0, "skipped": 0}
    digest = hashlib.sha256(JPEG).hexdigest()
    for image_id in (first, second):
        row = rig.row(image_id)
        assert (row.asset_status, row.sha256, row.size_bytes) == ("stored", digest, len(JPEG))
        assert (row.format, row.content_type, row.width, row.height) == (
            "JPEG", "image/jpeg", 40, 30,
        )  # fmt: skip
        assert row.storage_key == f"sha256/{digest[:2]}/{digest[2:4]}/{digest}.jpg"
        assert row.asset_attempts == 1 and row.fetched_at is not None
    (stored,) = rig.files()
    assert stored.read_bytes() == JPEG
    assert rig.round() == {"stored": 0, "retry": 0, "failed": 0, "refused": 0, "skipped": 0}


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Reply(500, b"oops"), "HTTP 500"),
        (Reply(200, JPEG, send_bytes=len(JPEG) // 3), "cut short"),
        (Reply(200, JPEG[: len(JPEG) // 2]), "does not decode whole"),  # a truncated file
        (Reply(200, b"<html>hello</html>", {"Content-Type": "image/jpeg"}), "does not decode"),
        (Reply(200, png_bytes((4, 4))), "a PNG image; the request asked for JPEG"),
    ],
)
def test_a_fault_is_retried_then_stored(rig: Rig, fault: Reply, reason: str) -> None:
    url = rig.host.route("/f.jpg", fault, Reply(200, JPEG))
    image_id = rig.image(url)
    assert rig.round()["retry"] == 1
    row = rig.row(image_id)
    assert row.asset_status == "pending" and reason in (row.asset_reason or "")
    assert rig.files() == []  # nothing stored from the faulty answer
    assert rig.round(ahead=1)["stored"] == 1
    row = rig.row(image_id)
    assert (row.asset_status, row.asset_reason, row.asset_attempts) == ("stored", None, 2)
    assert [p.read_bytes() for p in rig.files()] == [JPEG]


def test_an_expired_link_ends_failed_with_its_reason(rig: Rig) -> None:
    url = rig.host.route("/gone.jpg", Reply(404, b"expired"))
    image_id = rig.image(url, ttl=60)
    with Session(rig.engine) as session, session.begin():
        session.get(Image, image_id).created_at = utcnow() - timedelta(seconds=90)  # type: ignore[union-attr]
    assert rig.round()["failed"] == 1
    row = rig.row(image_id)
    assert row.asset_status == "failed" and "the link expired" in (row.asset_reason or "")
    assert "HTTP 404" in (row.asset_reason or "")


def test_retries_end_when_the_attempts_are_spent(rig: Rig) -> None:
    image_id = rig.image(rig.host.route("/down.jpg", Reply(503, b"busy")))
    for ahead in range(3):
        assert rig.round(ahead=ahead)["retry"] == 1
    assert rig.round(ahead=5)["failed"] == 1
    row = rig.row(image_id)
    assert row.asset_status == "failed" and row.asset_attempts == 4
    assert row.asset_reason == "gave up after 4 attempts: HTTP 503 from 127.0.0.1"


def test_a_permanent_answer_fails_at_once(rig: Rig) -> None:
    image_id = rig.image(rig.host.route("/no.jpg", Reply(403, b"denied")))
    assert rig.round()["failed"] == 1
    assert rig.row(image_id).asset_reason == "HTTP 403 from 127.0.0.1"


def test_a_url_off_the_allow_list_is_refused_and_never_asked(rig: Rig) -> None:
    with image_host() as internal:
        image_id = rig.image(internal.route("/x.jpg", Reply(200, JPEG)))
        assert rig.round()["refused"] == 1
        assert internal.requests() == []
    row = rig.row(image_id)
    assert row.asset_status == "refused" and "not on the image allow list" in (
        row.asset_reason or ""
    )


def test_a_worker_killed_mid_download_loses_nothing_and_stores_once(rig: Rig) -> None:
    url = rig.host.route("/k.jpg", Reply(200, JPEG))
    image_id = rig.image(url)
    # A worker claims the asset and dies before recording anything.
    with Session(rig.engine) as session, session.begin():
        dead = claims.hand_over(session, now=utcnow(), lease=timedelta(seconds=60), in_flight=10)
        (claim,) = claims.claim(
            session, token=dead.token, image_ids=[image_id], now=utcnow(),
            lease=timedelta(seconds=60), retry_window=timedelta(hours=1),
        )  # fmt: skip
    assert rig.round()["stored"] == 0  # its lease holds it
    assert rig.round(ahead=61)["stored"] == 1  # the lease ended: handed over again, stored
    # The dead worker's message, delivered again, claims nothing; its late record changes nothing.
    assert fetch(rig.runtime, dead.token, [image_id])["skipped"] == 1
    with Session(rig.engine) as session, session.begin():
        from remixq.assets.verify import verify

        assert not claims.record_stored(session, claim, verify(JPEG, "JPEG"), key="x", now=utcnow())
    row = rig.row(image_id)
    assert row.asset_status == "stored" and row.asset_attempts == 2
    assert len(rig.files()) == 1


def test_what_was_copied_is_recorded_when_a_later_copy_raises(rig: Rig) -> None:
    """A message's assets are claimed together and their outcomes recorded together after the
    downloads; one that raises (here the name service, the outer boundary, failing in a way it
    never should) does not lose the copies made before it: they are recorded, and the rest
    stay pending under their lease for a later try."""
    good = rig.image(rig.host.route("/g.jpg", Reply(200, JPEG)))
    bad = rig.image("http://boom.test/x.jpg")
    break_the_resolver(rig.runtime)
    with pytest.raises(RuntimeError, match="resolver broke"):
        rig.round()
    assert rig.row(good).asset_status == "stored"
    assert (rig.row(bad).asset_status, rig.row(bad).asset_attempts) == ("pending", 1)
    assert rig.row(bad).asset_next_attempt_at is not None  # held until its lease ends
    assert len(rig.files()) == 1


def test_a_slow_download_renews_the_lease_of_the_batch_after_it(db: Engine, tmp_path: Path) -> None:
    """The lease of a batch's assets (REMIXQ_ASSET_LEASE) is renewed before a download it
    might not cover (REMIXQ_IMAGE_FETCH_TIMEOUT), so that no sweep hands an asset over again
    while its batch is still busy with the slow ones before it."""
    with rigged(db, tmp_path, asset_lease=3.0, image_fetch_timeout=2.0) as rig:
        slow = rig.image(rig.host.route("/slow.jpg", Reply(200, JPEG, delay=1.5)))
        late = rig.image("http://boom.test/late.jpg")  # raises: its lease is left to read
        break_the_resolver(rig.runtime)
        claimed_at = utcnow()
        with pytest.raises(RuntimeError):
            rig.round()
        assert rig.row(slow).asset_status == "stored"
        due = rig.row(late).asset_next_attempt_at
        assert due is not None
        due = due if due.tzinfo else due.replace(tzinfo=claimed_at.tzinfo)  # SQLite: naive
        # Claimed at about `claimed_at` with 3 s, renewed after the 1.5-s download: 4.5 s.
        assert due >= claimed_at + timedelta(seconds=4.4)


@pytest.mark.parametrize("output_type", ["base64Data", "dataURI"])
def test_an_inline_output_is_stored_as_a_file(rig: Rig, output_type: str) -> None:
    data = png_bytes((5, 3))
    encoded = base64.b64encode(data).decode()
    field, value = (
        ("imageBase64Data", encoded)
        if output_type == "base64Data"
        else ("imageDataURI", f"data:image/png;base64,{encoded}")
    )
    image_id = rig.image(
        None, outputType=output_type, outputFormat="PNG", _raw={"imageUUID": "u", field: value}
    )
    assert rig.round()["stored"] == 1
    row = rig.row(image_id)
    assert (row.format, row.width, row.height) == ("PNG", 5, 3)
    assert row.raw == {"imageUUID": "u"}  # no base64 left in the database
    assert [p.read_bytes() for p in rig.files()] == [data]
    assert rig.host.requests() == []


def test_an_inline_output_that_is_no_image_fails_at_once(rig: Rig) -> None:
    image_id = rig.image(
        None, outputType="base64Data", _raw={"imageBase64Data": "bm90IGFuIGltYWdl"}
    )
    assert rig.round()["failed"] == 1
    assert "the inline output" in (rig.row(image_id).asset_reason or "")


def test_the_sweep_is_scheduled_on_the_periodic_queue(db: Engine, tmp_path: Path) -> None:
    settings = worker_settings(db, data_dir=tmp_path, asset_sweep_interval=1.5)
    app = create_celery(settings)
    assert app.conf.beat_schedule["asset-sweep"] == {
        "task": ASSET_SWEEP_TASK,
        "schedule": 1.5,
        "options": {"expires": 1.5, "queue": PERIODIC_QUEUE},
    }
    assert ASSETS_QUEUE in {queue.name for queue in app.conf.task_queues}


@pytest.mark.parametrize(
    ("handed_over", "threads", "per_message"),
    [
        (1, 16, FETCH_BATCH),  # a trickle: small messages, each downloaded at once
        (80, 16, FETCH_BATCH),  # no more than the threads can take in small messages
        (320, 16, 20),  # a backlog: an even share per thread, fewer transactions
        (1000, 16, MAX_FETCH_BATCH),  # capped: a message's downloads stay short
        (1000, 0, MAX_FETCH_BATCH),
    ],
)
def test_a_backlog_is_handed_over_in_fewer_larger_messages(
    handed_over: int, threads: int, per_message: int
) -> None:
    assert fetch_batch(handed_over, threads) == per_message
