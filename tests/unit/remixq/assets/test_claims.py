"""The assets' rows on both backends: a new image is pending, the sweep hands it over under a
token and a lease, a stale token claims and records nothing, a lost hand-over comes back when
its lease ends, and an outcome is recorded once."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from remixq.assets import claims
from remixq.assets.verify import verify
from remixq.db import utcnow
from remixq.models import Image
from remixq.states import AssetStatus
from tests.support.factories import add_image, make_job
from tests.support.images import png_bytes

LEASE = timedelta(seconds=120)
WINDOW = timedelta(hours=24)


@pytest.fixture(autouse=True)
def _only_ours(session: Session) -> None:
    """The sweep takes every pending image: those other tests committed to the shared test
    database are set aside inside this test's transaction (rolled back with it)."""
    session.execute(
        text("UPDATE images SET asset_status = 'failed' WHERE asset_status = 'pending'")
    )


def _image(session: Session, image_id: int) -> Image:
    found = session.scalar(
        select(Image).where(Image.id == image_id).execution_options(populate_existing=True)
    )
    assert found is not None
    return found


def test_a_new_image_is_pending_by_the_columns_defaults(session: Session) -> None:
    job = make_job(session)
    # As ingestion writes it: the image's own columns only (no asset column named).
    session.execute(
        text(
            "INSERT INTO images (job_id, image_uuid, image_url, raw, created_at)"
            " VALUES (:job, :uuid, 'https://im.runware.ai/a.jpg', '{}', CURRENT_TIMESTAMP)"
        ),
        {"job": job.id, "uuid": "0c6f0e4e-9d2b-4d3c-9b6e-2f1d0a7b8c9d"},
    )
    row = session.execute(
        text(
            "SELECT asset_status, asset_attempts, asset_next_attempt_at FROM images"
            " WHERE image_uuid = '0c6f0e4e-9d2b-4d3c-9b6e-2f1d0a7b8c9d'"
        )
    ).one()
    assert tuple(row) == ("pending", 0, None)


def test_hand_over_claim_and_record_under_one_token(session: Session) -> None:
    job = make_job(session)
    job.request = {"model": job.model, "ttl": 600, "outputFormat": "PNG"}
    first, second = add_image(session, job), add_image(session, job)
    now = utcnow()
    handover = claims.hand_over(session, now=now, lease=LEASE, in_flight=100)
    assert handover.image_ids == [first, second]
    # Handed over: not due again before the lease ends.
    assert claims.hand_over(session, now=now, lease=LEASE, in_flight=100).image_ids == []

    stale = claims.claim(
        session, token="0" * 32, image_ids=[first], now=now, lease=LEASE, retry_window=WINDOW
    )
    assert stale == []
    (claim,) = claims.claim(
        session, token=handover.token, image_ids=[first], now=now, lease=LEASE, retry_window=WINDOW
    )
    assert claim.attempts == 1 and claim.expected_format == "PNG"
    assert claim.expires_at == _image(session, first).created_at + timedelta(seconds=600)

    verified = verify(png_bytes((3, 2)), "PNG")
    assert claims.record_stored(session, claim, verified, key="sha256/k.png", now=now)
    # Recorded once: the same claim again changes nothing.
    assert not claims.record_stored(session, claim, verified, key="sha256/k.png", now=now)
    stored = _image(session, first)
    assert (stored.asset_status, stored.sha256, stored.width, stored.height) == (
        "stored", verified.sha256, 3, 2,
    )  # fmt: skip
    assert stored.asset_claim is None and stored.size_bytes == verified.size


def test_a_lost_hand_over_comes_back_after_its_lease_with_a_new_token(session: Session) -> None:
    job = make_job(session)
    image_id = add_image(session, job)
    now = utcnow()
    lost = claims.hand_over(session, now=now, lease=LEASE, in_flight=100)
    again = claims.hand_over(session, now=now + LEASE, lease=LEASE, in_flight=100)
    assert again.image_ids == [image_id] and again.token != lost.token
    # The old message's worker claims nothing; the new one claims it.
    old = claims.claim(
        session, token=lost.token, image_ids=[image_id], now=now, lease=LEASE, retry_window=WINDOW
    )
    assert old == []
    (claim,) = claims.claim(
        session, token=again.token, image_ids=[image_id], now=now, lease=LEASE, retry_window=WINDOW
    )
    assert claims.record_retry(session, claim, reason="HTTP 500", at=now + timedelta(seconds=4))
    row = _image(session, image_id)
    assert (row.asset_status, row.asset_reason, row.asset_claim) == ("pending", "HTTP 500", None)
    # Due again after its backoff, not before.
    assert claims.hand_over(session, now=now, lease=LEASE, in_flight=100).image_ids == []
    later = claims.hand_over(session, now=now + timedelta(seconds=5), lease=LEASE, in_flight=100)
    assert later.image_ids == [image_id]


def test_the_sweep_keeps_at_most_in_flight_handed_over(session: Session) -> None:
    job = make_job(session, number_results=5)
    ids = [add_image(session, job) for _ in range(5)]
    now = utcnow()
    assert claims.hand_over(session, now=now, lease=LEASE, in_flight=3).image_ids == ids[:3]
    assert claims.hand_over(session, now=now, lease=LEASE, in_flight=3).image_ids == []
    assert claims.hand_over(session, now=now, lease=LEASE, in_flight=4).image_ids == ids[3:4]


def test_final_outcomes_leave_the_sweep(session: Session) -> None:
    job = make_job(session)
    image_id = add_image(session, job, url="http://169.254.169.254/latest")
    now = utcnow()
    handover = claims.hand_over(session, now=now, lease=LEASE, in_flight=10)
    (claim,) = claims.claim(
        session, token=handover.token, image_ids=[image_id], now=now, lease=LEASE,
        retry_window=WINDOW,
    )  # fmt: skip
    assert claim.expires_at == _image(session, image_id).created_at + WINDOW  # no ttl
    assert claims.record_final(session, claim, AssetStatus.REFUSED, reason="not allowed")
    assert claims.hand_over(session, now=now + 2 * LEASE, lease=LEASE, in_flight=10).image_ids == []
    assert _image(session, image_id).asset_status == "refused"


def test_an_inline_output_leaves_the_row_once_stored(session: Session) -> None:
    job = make_job(session)
    data = png_bytes((2, 2))
    encoded = base64.b64encode(data).decode()
    image_id = add_image(
        session, job, url=None, raw={"imageUUID": "x", "imageBase64Data": encoded, "seed": 7}
    )
    job.request = {"model": job.model, "outputType": "base64Data", "outputFormat": "PNG"}
    now = utcnow()
    handover = claims.hand_over(session, now=now, lease=LEASE, in_flight=10)
    (claim,) = claims.claim(
        session, token=handover.token, image_ids=[image_id], now=now, lease=LEASE,
        retry_window=WINDOW,
    )  # fmt: skip
    assert claim.inline == encoded and claim.url is None
    claims.record_stored(session, claim, verify(data, "PNG"), key="sha256/x.png", now=now)
    assert _image(session, image_id).raw == {"imageUUID": "x", "seed": 7}
