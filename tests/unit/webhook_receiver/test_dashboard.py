"""The dashboard through Flask's test client, on a real database (both backends): sign-in and
its session, CSRF, read-only keys, the pages and their filters, controls and exports."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from remixq.db import utcnow
from remixq.models import ApiKey, Campaign, Image, Job
from remixq.native import SAFETY_REJECTED
from tests.support.dashboard import (
    REFERENCE,
    Dashboard,
    csrf_of,
    dashboard,
    new_key,
    variant_campaign,
)

AXES = [
    {"positivePrompt": prompt, "providerSettings.ideogram.stylePreset": style}
    for prompt in ("autumn tin", "winter tin")
    for style in ("BRIGHT_ART", "VINTAGE_POSTER", "POP_ART")
]


@pytest.fixture
def ui(engine: Engine, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard(engine, tmp_path) as client:
        yield client


@pytest.fixture
def signed_in(ui: Dashboard, engine: Engine) -> Dashboard:
    _, key = new_key(engine)
    assert ui.sign_in(key).status_code == 302
    return ui


def _jobs(engine: Engine, campaign_id: int) -> list[Job]:
    with Session(engine) as session:
        return list(session.scalars(select(Job).where(Job.campaign_id == campaign_id)))


def _results(page: str) -> str:
    """The gallery's cards, without its filter form (which lists every value)."""
    return page.split('<h2 class="visually-hidden">Results</h2>', 1)[1]


# -- signing in ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/campaigns/1", "/campaigns/1/gallery", "/campaigns/1/compare", "/campaigns/1/failed",
     "/submit", "/schedules", "/campaigns/1/export.csv", "/campaigns/1/images.zip",
     "/images/6f1c2f6e-0c4b-4a43-9d2e-4b8f2a1d9c11", "/jobs/1/reference"],
)  # fmt: skip
def test_every_page_redirects_to_sign_in_without_a_session(ui: Dashboard, path: str) -> None:
    response = ui.client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=")


def test_the_live_endpoint_answers_401_in_json_without_a_session(ui: Dashboard) -> None:
    response = ui.client.get("/live?campaign=1")
    assert response.status_code == 401
    assert response.json == {
        "error": {"code": "unauthorized", "message": "sign in to the dashboard"}
    }


def test_sign_in_sets_an_http_only_same_site_cookie_without_the_key(
    ui: Dashboard, engine: Engine
) -> None:
    _, key = new_key(engine)
    response = ui.sign_in(key)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert key not in cookie and key.split("_", 2)[2] not in cookie
    assert ui.client.get("/").status_code == 200


def test_the_cookie_is_secure_over_https(ui: Dashboard, engine: Engine) -> None:
    _, key = new_key(engine)
    page = ui.client.get("/sign-in", base_url="https://dash.example.test")
    response = ui.client.post(
        "/sign-in",
        data={"api_key": key, "csrf_token": csrf_of(page)},
        base_url="https://dash.example.test",
    )
    assert "Secure" in response.headers["Set-Cookie"]


def test_the_cookie_is_always_secure_when_configured(engine: Engine, tmp_path: Path) -> None:
    _, key = new_key(engine)
    with dashboard(engine, tmp_path, dashboard_secure_cookie=True) as ui:
        assert "Secure" in ui.sign_in(key).headers["Set-Cookie"]


def test_a_wrong_key_is_refused_and_makes_no_session(ui: Dashboard, engine: Engine) -> None:
    _, key = new_key(engine)
    response = ui.sign_in(key[:-2] + "xx")
    assert response.status_code == 401
    assert "not valid" in response.get_data(as_text=True)
    assert ui.client.get("/").status_code == 302


def test_sign_in_without_the_csrf_token_is_refused(ui: Dashboard, engine: Engine) -> None:
    _, key = new_key(engine)
    ui.client.get("/sign-in")
    response = ui.client.post("/sign-in", data={"api_key": key})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert ui.client.get("/").status_code == 302


@pytest.mark.parametrize(
    "target", ["//evil.example.test/x", "https://evil.example.test/", "/\\evil.example.test"]
)
def test_sign_in_never_sends_to_another_site(ui: Dashboard, engine: Engine, target: str) -> None:
    _, key = new_key(engine)
    page = ui.client.get("/sign-in", query_string={"next": target})
    response = ui.client.post(
        "/sign-in", data={"api_key": key, "csrf_token": csrf_of(page), "next": target}
    )
    assert response.headers["Location"] == "/"


def test_sign_in_returns_to_the_page_asked_for(ui: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, [None])
    _, key = new_key(engine)
    first = ui.client.get(f"/campaigns/{campaign_id}/gallery")
    target = first.headers["Location"].split("next=", 1)[1]
    page = ui.client.get(first.headers["Location"])
    response = ui.client.post(
        "/sign-in",
        data={"api_key": key, "csrf_token": csrf_of(page), "next": target.replace("%2F", "/")},
    )
    assert response.headers["Location"] == f"/campaigns/{campaign_id}/gallery"


def test_a_revoked_key_ends_its_sessions_at_once(signed_in: Dashboard, engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        key_id = session.scalar(select(func.max(ApiKey.id)))
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=utcnow()))
    response = signed_in.client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


def test_a_sign_in_older_than_its_lifetime_is_over(signed_in: Dashboard) -> None:
    with signed_in.client.session_transaction() as session:
        session["signed_in_at"] -= 13 * 3600  # the default lifetime is 12 hours
    assert signed_in.client.get("/").status_code == 302


def test_sign_out_ends_the_session(signed_in: Dashboard) -> None:
    response = signed_in.post_form("/", "/sign-out")
    assert response.status_code == 302
    assert signed_in.client.get("/").status_code == 302


def test_the_secret_is_generated_private_when_unset(
    ui: Dashboard, engine: Engine, tmp_path: Path
) -> None:
    _, key = new_key(engine)
    ui.sign_in(key)
    secret = tmp_path / "dashboard-secret"
    assert secret.is_file() and secret.stat().st_mode & 0o777 == 0o600


def test_pages_carry_security_headers(signed_in: Dashboard) -> None:
    response = signed_in.client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_api_ignores_the_dashboard_session(signed_in: Dashboard) -> None:
    response = signed_in.client.get("/api/v1/campaigns")
    assert response.status_code == 401  # a cookie is no API key: no CSRF-able API


# -- read-only keys and CSRF on actions ---------------------------------------------------------


def test_an_action_without_the_csrf_token_is_refused(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, [None, None], status="failed")
    response = signed_in.client.post(f"/campaigns/{campaign_id}/retry")
    assert response.status_code == 400
    forged = signed_in.client.post(f"/campaigns/{campaign_id}/retry", data={"csrf_token": "x"})
    assert forged.status_code == 400
    assert len(_jobs(engine, campaign_id)) == 2  # nothing retried


def test_a_read_only_key_sees_but_cannot_act(ui: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, [None], status="failed")
    _, key = new_key(engine, read_only=True)
    ui.sign_in(key)
    page = ui.client.get(f"/campaigns/{campaign_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "read-only" in text and "Retry failed" not in text
    response = ui.post_form(f"/campaigns/{campaign_id}", f"/campaigns/{campaign_id}/retry")
    assert response.status_code == 403
    assert len(_jobs(engine, campaign_id)) == 1


# -- pages --------------------------------------------------------------------------------------


def test_campaigns_are_listed_newest_first_a_page_at_a_time(
    signed_in: Dashboard, engine: Engine
) -> None:
    ids = [variant_campaign(engine, [None]) for _ in range(27)]
    first = signed_in.client.get("/").get_data(as_text=True)
    assert first.index(f'data-live-campaign="{ids[-1]}"') < first.index(
        f'data-live-campaign="{ids[-2]}"'
    )
    assert f'data-live-campaign="{ids[0]}"' not in first
    assert "Older campaigns" in first
    before = ids[-25]
    second = signed_in.client.get(f"/?before={before}").get_data(as_text=True)
    assert f'data-live-campaign="{ids[-26]}"' in second
    assert f'data-live-campaign="{before}"' not in second


def test_the_live_endpoint_reports_progress_and_spend(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, [None, None, None], images=2)
    with Session(engine) as session, session.begin():
        job = session.scalars(select(Job).where(Job.campaign_id == campaign_id)).first()
        assert job is not None
        job.status = "submitted"
    body = signed_in.client.get(f"/live?campaign={campaign_id}").json
    (found,) = body["campaigns"]
    assert found["id"] == campaign_id and found["jobs"] == 3 and found["done"] == 2
    assert found["counts"] == {"completed": 2, "submitted": 1}
    assert found["outcome"] == "running" and found["images"] == 6
    assert found["spent_usd"] == "0.36"
    widths = {s["status"]: s["width"] for s in found["segments"]}
    assert widths["completed"] == pytest.approx(666.67) and widths["submitted"] > 0
    assert found["progress"] == "2 of 3 done: 2 completed, 1 submitted"


def test_bad_parameters_are_a_400_page(signed_in: Dashboard) -> None:
    assert signed_in.client.get("/?before=abc").status_code == 400
    assert signed_in.client.get("/live?campaign=-1").status_code == 400
    assert signed_in.client.get("/campaigns/999999999").status_code == 404


def test_the_overview_shows_spend_charts_and_variants(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, AXES, budget=None)
    text = signed_in.client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'aria-labelledby="spend-title spend-desc"' in text  # the spend-over-time chart
    assert "Per model" in text and "Per variant" in text
    assert text.count("of this variant</span>") == len(AXES)


def test_the_gallery_filters_by_variant_value(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, AXES)
    page = signed_in.client.get(
        f"/campaigns/{campaign_id}/gallery",
        query_string={"v.providerSettings.ideogram.stylePreset": json.dumps("POP_ART")},
    )
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert text.count('<article class="card') == 2
    assert "autumn tin" in _results(text) and "winter tin" in _results(text)
    both = signed_in.client.get(
        f"/campaigns/{campaign_id}/gallery",
        query_string={
            "v.providerSettings.ideogram.stylePreset": json.dumps("POP_ART"),
            "v.positivePrompt": json.dumps("winter tin"),
        },
    ).get_data(as_text=True)
    assert both.count('<article class="card') == 1 and "autumn tin" not in _results(both)


def test_the_gallery_refuses_an_unknown_axis_or_value(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, AXES)
    path = f"/campaigns/{campaign_id}/gallery"
    assert signed_in.client.get(path, query_string={"v.nope": '"x"'}).status_code == 400
    bad_value = {"v.positivePrompt": '"spring tin"'}
    assert signed_in.client.get(path, query_string=bad_value).status_code == 400
    assert signed_in.client.get(path, query_string={"status": "lost"}).status_code == 400


def test_the_gallery_pages_by_job(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, [None] * 30)
    first = signed_in.client.get(f"/campaigns/{campaign_id}/gallery").get_data(as_text=True)
    assert first.count('<article class="card') == 24
    job_ids = sorted(job.id for job in _jobs(engine, campaign_id))
    second = signed_in.client.get(f"/campaigns/{campaign_id}/gallery?after={job_ids[23]}").get_data(
        as_text=True
    )
    assert second.count('<article class="card') == 6 and f'data-job="{job_ids[24]}"' in second


def test_a_gallery_card_shows_its_reference_result_seed_and_an_unsafe_flag(
    signed_in: Dashboard, engine: Engine
) -> None:
    campaign_id = variant_campaign(engine, [{"positivePrompt": "a tin"}])
    with Session(engine) as session, session.begin():
        session.execute(
            update(Image)
            .where(Image.job_id.in_(select(Job.id).where(Job.campaign_id == campaign_id)))
            .values(nsfw=True)
        )
    text = signed_in.client.get(f"/campaigns/{campaign_id}/gallery").get_data(as_text=True)
    assert "/reference" in text and "seed 1000" in text and "$0.06" in text
    assert "unsafe" in text and "a tin" in text


def test_only_a_safety_refusal_is_labelled_refused(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(
        engine, [{"positivePrompt": "a tin"}, {"positivePrompt": "a box"}], status="failed"
    )
    refused, failed = sorted(_jobs(engine, campaign_id), key=lambda job: job.id)
    with Session(engine) as session, session.begin():
        session.execute(
            update(Job)
            .where(Job.id == refused.id)
            .values(error_code=SAFETY_REJECTED, error_message="the prompt failed the check")
        )
        session.execute(
            update(Job)
            .where(Job.id == failed.id)
            .values(error_code="timeoutProvider", error_message="no answer in time")
        )
    text = signed_in.client.get(f"/campaigns/{campaign_id}/gallery").get_data(as_text=True)
    cards = {
        job_id: card
        for card in _results(text).split('<article class="card')[1:]
        for job_id in (refused.id, failed.id)
        if f'data-job="{job_id}"' in card
    }
    badge = '<span class="badge badge-error">refused</span>'
    assert badge in cards[refused.id] and "safetyRejected" in cards[refused.id]
    assert badge not in cards[failed.id] and "timeoutProvider" in cards[failed.id]
    assert '<span class="status status-failed">failed</span>' in cards[failed.id]


def test_comparing_two_values_lines_up_the_other_axes(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, AXES)
    page = signed_in.client.get(
        f"/campaigns/{campaign_id}/compare",
        query_string=[
            ("axis", "providerSettings.ideogram.stylePreset"),
            ("value", json.dumps("BRIGHT_ART")),
            ("value", json.dumps("POP_ART")),
        ],
    )
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert text.count('class="row-label"') == 2  # one row per prompt
    assert text.count('<article class="card') == 4  # two values x two prompts
    assert "VINTAGE_POSTER" not in text.split("<table", 1)[1]


def test_the_failed_page_shows_the_providers_error(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, [None], status="failed")
    text = signed_in.client.get(f"/campaigns/{campaign_id}/failed").get_data(as_text=True)
    assert "invalidPrompt" in text and "the prompt was refused" in text


# -- actions ------------------------------------------------------------------------------------


def test_retry_failed_gives_each_failed_job_a_new_attempt(
    signed_in: Dashboard, engine: Engine
) -> None:
    campaign_id = variant_campaign(engine, [None, None], status="failed")
    page = f"/campaigns/{campaign_id}"
    response = signed_in.post_form(page, f"{page}/retry")
    assert response.status_code == 302 and response.headers["Location"] == page
    jobs = _jobs(engine, campaign_id)
    assert len(jobs) == 4 and sum(job.status == "pending" for job in jobs) == 2
    assert "Retried 2 failed job(s)" in signed_in.client.get(page).get_data(as_text=True)


def test_pause_resume_and_cancel(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, [None, None], status="pending")
    page = f"/campaigns/{campaign_id}"
    signed_in.post_form(page, f"{page}/pause")
    with Session(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.paused_by == "user"
    signed_in.post_form(page, f"{page}/resume")
    signed_in.post_form(page, f"{page}/cancel")
    with Session(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.paused_at is None
        assert campaign.cancelled_at is not None
    assert {job.status for job in _jobs(engine, campaign_id)} == {"cancelled"}


# -- exports ------------------------------------------------------------------------------------


def test_exports_csv_jsonl_and_zip(signed_in: Dashboard, engine: Engine) -> None:
    campaign_id = variant_campaign(engine, AXES[:2], images=2)
    base = f"/campaigns/{campaign_id}"
    as_csv = signed_in.client.get(f"{base}/export.csv")
    assert as_csv.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert len(rows) == 4 and rows[0]["cost_usd"] == "0.06"
    assert json.loads(rows[0]["variant"]) == AXES[0]
    lines = signed_in.client.get(f"{base}/export.jsonl").get_data(as_text=True).splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["variant"] == AXES[0]
    archive = zipfile.ZipFile(io.BytesIO(signed_in.client.get(f"{base}/images.zip").data))
    manifest = archive.read("manifest.jsonl").decode().splitlines()
    assert len(manifest) == 4
    assert all("image_url" in json.loads(line) for line in manifest)


# -- images -------------------------------------------------------------------------------------


def test_an_image_not_stored_here_redirects_to_its_url(
    signed_in: Dashboard, engine: Engine
) -> None:
    campaign_id = variant_campaign(engine, [None])
    with Session(engine) as session:
        image = session.scalars(select(Image).join(Job).where(Job.campaign_id == campaign_id)).one()
    response = signed_in.client.get(f"/images/{image.image_uuid}?size=256")
    assert response.status_code == 302 and response.headers["Location"] == image.image_url
    assert signed_in.client.get(f"/images/{image.image_uuid}?size=5000").status_code == 400


def test_a_reference_image_is_served_decoded_or_redirected(
    signed_in: Dashboard, engine: Engine
) -> None:
    import base64

    from PIL import Image as Pillow

    buffer = io.BytesIO()
    Pillow.new("RGB", (8, 8), "red").save(buffer, "PNG")
    inline = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    inline_id = variant_campaign(engine, [None], reference=inline)
    url_id = variant_campaign(engine, [None])
    (inline_job,) = _jobs(engine, inline_id)
    (url_job,) = _jobs(engine, url_id)
    served = signed_in.client.get(f"/jobs/{inline_job.id}/reference")
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.data == buffer.getvalue()
    redirected = signed_in.client.get(f"/jobs/{url_job.id}/reference")
    assert redirected.status_code == 302 and redirected.headers["Location"] == REFERENCE


def test_a_reference_that_is_not_an_image_is_not_served(
    signed_in: Dashboard, engine: Engine
) -> None:
    campaign_id = variant_campaign(
        engine, [None], reference="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="
    )
    (job,) = _jobs(engine, campaign_id)
    assert signed_in.client.get(f"/jobs/{job.id}/reference").status_code == 404
