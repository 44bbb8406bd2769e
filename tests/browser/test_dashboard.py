"""The dashboard in headless Chromium against a real stack (simulator, worker, receiver and
beat on PostgreSQL + Redis): sign in, submit a small matrix campaign, watch it finish without a
reload, look at the gallery (every thumbnail loaded), filter it by variant, compare two
variants, retry a failed job, export; a schedule's next and past occurrences, paused and
resumed; a page opened signed out goes to the sign-in page; an action without its CSRF token
is refused. Every page is checked with axe-core and kept as a screenshot
(test-artifacts/screenshots/)."""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    ALL_IMPACTS,
    PHONE,
    Watched,
    axe_violations,
    check_page,
    chromium,
    screenshot,
    watched_context,
    wider_than_the_screen,
)
from tests.support.images import png_bytes
from tests.support.stack import Stack, running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REFERENCE = "data:image/png;base64," + base64.b64encode(png_bytes((24, 24))).decode()
SPEC = f"""\
name: tins-{{suffix}}
budget_usd: "2.00"
defaults:
  model: "ideogram:4@2"
  width: 1024
  height: 1024
  numberResults: 1
  inputs: {{{{referenceImages: ["{REFERENCE}"]}}}}
matrix:
  positivePrompt: ["an autumn tin", "a winter tin"]
  providerSettings.ideogram.stylePreset: ["BRIGHT_ART", "POP_ART"]
"""
LINE = {
    "model": "ideogram:4@2",
    "positivePrompt": "a tin that fails first",
    "width": 1024,
    "height": 1024,
    "inputs": {"referenceImages": [REFERENCE]},
}
TIMEOUT_MS = 120_000
FAST_MS = 10  # the simulator's latency per result
SLOW_MS = 6_000  # ... while a test watches a campaign progress


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("browser")
    with running_stack(
        tmp,
        backend="postgresql",
        sim_args=("--latency-ms", str(FAST_MS)),
        database="browser",
        beat=True,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def key(stack: Stack) -> str:
    made = json.loads(stack.run_cli("apikey", "create", "browser", "--json").stdout)
    return str(made["key"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def watched(browser: Browser, stack: Stack) -> Iterator[Watched]:
    with watched_context(browser, stack.receiver_url) as context:
        yield context
        assert not context.problems, context.problems


def sign_in(page: Page, key: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()


def submit_file(page: Page, tmp: Path, filename: str, content: str) -> None:
    """Upload a campaign file on the submit page, check its estimate, confirm."""
    path = tmp / filename
    path.write_text(content)
    page.get_by_role("link", name="Submit", exact=True).click()
    check_page(page, "submit")
    page.get_by_label("Campaign file").set_input_files(str(path))
    page.get_by_role("button", name="Check and estimate").click()
    expect(page.get_by_text("It is valid")).to_be_visible()
    check_page(page, f"submit-estimate-{filename}")
    page.get_by_role("button", name="Confirm and submit").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("#")


def test_a_page_opened_signed_out_goes_to_sign_in(watched: Watched, stack: Stack) -> None:
    page = watched.new_page()
    page.goto("/campaigns/1/gallery")
    assert "/sign-in?next=" in page.url
    expect(page.get_by_label("API key")).to_be_visible()
    check_page(page, "sign-in")
    image = page.request.get(f"{stack.receiver_url}/images/{uuid.uuid4()}", max_redirects=0)
    assert image.status == 302 and "/sign-in" in image.headers["location"]


def test_submit_watch_gallery_filter_compare_export(
    watched: Watched, stack: Stack, key: str, tmp_path: Path
) -> None:
    page = watched.new_page()
    sign_in(page, key)
    check_page(page, "campaigns")
    suffix = uuid.uuid4().hex[:8]
    # Each result takes 4-8 s, so the campaign's page opens before any job is done and the
    # live figures have something to show.
    stack.set_faults(latency_ms=SLOW_MS, latency_jitter_ms=SLOW_MS / 3)
    try:
        submit_file(page, tmp_path, "tins.yaml", SPEC.format(suffix=suffix))
        bar = page.get_by_role("progressbar")
        assert bar.get_attribute("aria-valuenow") != "4", "finished before the page opened"
        assert not page.get_by_text("4 of 4 done").is_visible()

        # The progress bar reaches the end by itself: no reload (the marker would be gone).
        page.evaluate("() => { window.__stillTheSamePage = true; }")
        expect(page.get_by_text("4 of 4 done: 4 completed")).to_be_visible(timeout=TIMEOUT_MS)
    finally:
        stack.set_faults(latency_ms=FAST_MS, latency_jitter_ms=0)
    assert page.evaluate("() => window.__stillTheSamePage === true")
    assert bar.get_attribute("aria-valuenow") == "4"
    page.reload()  # the charts are drawn by the server once images are stored
    expect(page.locator("svg[aria-labelledby='spend-title spend-desc']")).to_be_visible()
    check_page(page, "campaign")
    campaign_url = page.url

    # The campaigns list, with this campaign in it.
    page.get_by_role("link", name="Campaigns", exact=True).click()
    expect(page.get_by_role("link", name=f"tins-{suffix}")).to_be_visible()
    check_page(page, "campaigns-list")
    page.goto(campaign_url)

    # The gallery: every thumbnail (and reference) has really loaded.
    page.get_by_role("link", name="Gallery").click()
    cards = page.locator("article.card")
    expect(cards).to_have_count(4)
    for image in page.locator("article.card img").all():
        image.scroll_into_view_if_needed()
    page.wait_for_function(
        """() => [...document.querySelectorAll('article.card img')]
            .every(i => i.complete && i.naturalWidth > 0)""",
        timeout=30_000,
    )
    assert page.locator("img.thumb").count() == 4
    check_page(page, "gallery")

    # The full-size viewer opens and closes from the keyboard.
    page.locator("a.zoom").nth(1).focus()
    page.keyboard.press("Enter")
    expect(page.locator("dialog.viewer")).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('dialog.viewer img');"
        " return i.complete && i.naturalWidth > 0; }",
        timeout=30_000,
    )
    check_page(page, "gallery-viewer")
    page.keyboard.press("Escape")
    expect(page.locator("dialog.viewer")).to_be_hidden()

    # Filter by one axis's value: the two jobs of that style remain.
    page.get_by_label("providerSettings.ideogram.stylePreset").select_option(json.dumps("POP_ART"))
    page.get_by_role("button", name="Filter").click()
    expect(cards).to_have_count(2)
    for text in cards.all_inner_texts():
        assert "POP_ART" in text
    check_page(page, "gallery-filtered")

    # Compare the two styles: one column each, one row per prompt.
    page.get_by_role("link", name="Compare").click()
    page.get_by_label("Axis").select_option("providerSettings.ideogram.stylePreset")
    page.get_by_role("button", name="Choose this axis").click()
    page.get_by_label('"BRIGHT_ART"').check()
    page.get_by_label('"POP_ART"').check()
    page.get_by_role("button", name="Compare").click()
    table = page.locator("table.compare")
    expect(table.locator("thead th")).to_have_count(3)
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("article.card")).to_have_count(4)
    check_page(page, "compare")

    # Export: CSV and the zip, downloaded as a person would.
    page.goto(campaign_url)
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == 4 and {row["status"] for row in rows} == {"completed"}
    with page.expect_download() as download:
        page.get_by_role("link", name="Images (zip)").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        assert len(archive.read("manifest.jsonl").decode().splitlines()) == 4

    # A phone-sized screen: the same page, without sideways scrolling.
    page.set_viewport_size(PHONE)
    page.reload()
    assert wider_than_the_screen(page) == []
    screenshot(page, "campaign-phone")
    page.get_by_role("link", name="Gallery").click()
    assert wider_than_the_screen(page) == []
    screenshot(page, "gallery-phone")


def test_submit_lists_the_errors_of_a_bad_file(
    watched: Watched, stack: Stack, key: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(LINE | {"width": "wide"}) + "\n" + "{not json\n" + json.dumps(LINE) + "\n"
    )
    page = watched.new_page()
    sign_in(page, key)
    page.get_by_role("link", name="Submit", exact=True).click()
    page.get_by_label("Campaign file").set_input_files(str(path))
    page.get_by_role("button", name="Check and estimate").click()
    expect(page.get_by_role("heading", name="2 problems: nothing was stored")).to_be_visible()
    expect(page.locator("section.errors tbody tr")).to_have_count(2)
    check_page(page, "submit-errors")
    assert axe_violations(page, impacts=ALL_IMPACTS) == []


def test_retry_a_failed_job(watched: Watched, stack: Stack, key: str, tmp_path: Path) -> None:
    page = watched.new_page()
    sign_in(page, key)
    stack.set_faults(failure_rate=1.0)
    try:
        submit_file(page, tmp_path, "fails.jsonl", json.dumps(LINE) + "\n")
        expect(page.get_by_text("1 of 1 done: 1 failed")).to_be_visible(timeout=TIMEOUT_MS)
    finally:
        stack.set_faults(failure_rate=0.0)
    page.get_by_role("link", name="Failed jobs").click()
    expect(page.locator("td.error-text")).not_to_be_empty()
    check_page(page, "failed")
    page.get_by_role("button", name="Retry failed (1)").click()
    expect(page.get_by_text("Retried 1 failed job(s)")).to_be_visible()
    expect(page.get_by_text("1 of 1 done: 1 completed")).to_be_visible(timeout=TIMEOUT_MS)
    check_page(page, "retried")


def test_an_action_without_the_csrf_token_is_refused(
    watched: Watched, stack: Stack, key: str, tmp_path: Path
) -> None:
    page = watched.new_page()
    sign_in(page, key)
    campaign_id = stack.submit([LINE], f"csrf-{uuid.uuid4().hex[:8]}")
    stack.wait_final(campaign_id, timeout=TIMEOUT_MS / 1000)
    # The browser's own session cookie, but no token: as a forged cross-site form would be.
    refused = page.request.post(f"/campaigns/{campaign_id}/pause", form={"x": "1"})
    assert refused.status == 400 and "CSRF" in refused.text()
    forged = page.request.post(f"/campaigns/{campaign_id}/retry", form={"csrf_token": "forged"})
    assert forged.status == 400
    assert stack.campaign(campaign_id).paused_at is None
    assert len(stack.jobs(campaign_id)) == 1
    page.goto(f"/campaigns/{campaign_id}")
    check_page(page, "campaign-small")


def test_schedules_page_pause_and_resume(
    watched: Watched, stack: Stack, key: str, tmp_path: Path
) -> None:
    name = f"nightly-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "nightly.jsonl"
    path.write_text(json.dumps(LINE) + "\n")
    # Once a year, at a time no test run reaches: only `schedule run` fires it here.
    stack.run_cli("schedule", "add", name, "--cron", "0 9 1 1 *", "--file", str(path))
    fired = json.loads(stack.run_cli("schedule", "run", name, "--json").stdout)
    stack.wait_final(int(fired["campaign_id"]), timeout=TIMEOUT_MS / 1000)

    page = watched.new_page()
    sign_in(page, key)
    page.get_by_role("link", name="Schedules", exact=True).click()
    section = page.locator("section.panel").filter(
        has=page.get_by_role("heading", level=2, name=name)
    )
    expect(section.get_by_role("heading", name="Next occurrences")).to_be_visible()
    expect(section.locator("ul time")).to_have_count(5)
    expect(section.locator("ul time").first).to_contain_text("-01-01 09:00")
    past = section.locator("table tbody tr")
    expect(past).to_have_count(1)
    expect(past.first).to_contain_text("fired")
    expect(past.first.get_by_role("link", name=fired["campaign"])).to_be_visible()
    check_page(page, "schedules")

    section.get_by_role("button", name=f"Pause schedule {name}").click()
    expect(page.get_by_text(f"Paused schedule {name}.")).to_be_visible()
    expect(section.locator("h2 .badge")).to_have_text("paused")
    expect(section.get_by_text("None while paused.")).to_be_visible()
    assert paused(stack, name) is True
    check_page(page, "schedules-paused")
    section.get_by_role("button", name=f"Resume schedule {name}").click()
    expect(page.get_by_text(f"Resumed schedule {name}.")).to_be_visible()
    expect(section.locator("h2 .badge")).to_have_count(0)
    expect(section.locator("ul time")).to_have_count(5)
    assert paused(stack, name) is False
    page.set_viewport_size(PHONE)
    page.reload()
    assert wider_than_the_screen(page) == []
    screenshot(page, "schedules-phone")


def paused(stack: Stack, name: str) -> bool:
    """Whether schedule NAME is paused, as `remixq schedule show` says."""
    return bool(json.loads(stack.run_cli("schedule", "show", name, "--json").stdout)["paused"])
