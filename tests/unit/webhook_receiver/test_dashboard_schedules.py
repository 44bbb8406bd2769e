"""The dashboard's schedules page (both backends): next occurrences, past ones with their
campaigns, pause and resume, and the campaign's link to its schedule. It needs
remixq.schedules (issue 17): without it the page says there are none, and these tests skip."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from remixq.config import load_settings
from remixq.db import make_sessionmaker, transaction, utcnow
from remixq.pricing import PriceTable
from tests.support.dashboard import Dashboard, dashboard, new_key

store: Any = pytest.importorskip("remixq.schedules.store")
firing: Any = pytest.importorskip("remixq.schedules.firing")
sources: Any = pytest.importorskip("remixq.schedules.sources")

LINE = {
    "model": "ideogram:4@2",
    "positivePrompt": "a nightly tin",
    "width": 1024,
    "height": 1024,
    "inputs": {"referenceImages": ["https://assets.example.test/a.jpg"]},
}


@pytest.fixture
def ui(engine: Engine, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard(engine, tmp_path) as client:
        _, key = new_key(engine)
        client.sign_in(key)
        yield client


def _schedule(engine: Engine, tmp_path: Path) -> tuple[str, int]:
    """A schedule that fired once: its name and its campaign's id."""
    name = f"nightly-{uuid.uuid4().hex[:8]}"
    settings = load_settings(data_dir=tmp_path)
    rules = sources.Rules.of(settings)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        definition = store.check_definition(
            name=name,
            cron="0 3 * * *",
            timezone="Europe/Berlin",
            source=json.dumps(LINE) + "\n",
            source_name="nightly.jsonl",
            budget_usd=None,
            catch_up="skip",
            catch_up_max=10,
            rules=rules,
        )
        store.add(session, definition, now=utcnow())
    fired = firing.run_now(sessions, name, rules=rules, prices=PriceTable.default(), enqueue=None)
    return name, int(fired.campaign_id)


def test_the_page_shows_next_and_past_occurrences(
    ui: Dashboard, engine: Engine, tmp_path: Path
) -> None:
    name, campaign_id = _schedule(engine, tmp_path)
    text = ui.client.get("/schedules").get_data(as_text=True)
    section = text.split(f">{name} ", 1)[1].split("</section>", 1)[0]
    assert "Next occurrences" in section and section.count(" 03:00 CE") == 5
    assert f'href="/campaigns/{campaign_id}"' in section and f"{name}@" in section
    overview = ui.client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert f">{name}</a>" in overview  # the campaign names the schedule it came from


def test_pause_and_resume_a_schedule(ui: Dashboard, engine: Engine, tmp_path: Path) -> None:
    name, _ = _schedule(engine, tmp_path)
    with make_sessionmaker(engine)() as session:
        schedule_id = store.find(session, name).id
    response = ui.post_form("/schedules", f"/schedules/{schedule_id}/pause")
    assert response.status_code == 302
    with make_sessionmaker(engine)() as session:
        assert store.find(session, name).paused_at is not None
    text = ui.client.get("/schedules").get_data(as_text=True)
    section = text.split(f">{name} ", 1)[1].split("</section>", 1)[0]
    assert "None while paused." in section
    ui.post_form("/schedules", f"/schedules/{schedule_id}/resume")
    with make_sessionmaker(engine)() as session:
        assert store.find(session, name).paused_at is None


def test_a_schedule_control_needs_the_csrf_token(
    ui: Dashboard, engine: Engine, tmp_path: Path
) -> None:
    name, _ = _schedule(engine, tmp_path)
    with make_sessionmaker(engine)() as session:
        schedule_id = store.find(session, name).id
    assert ui.client.post(f"/schedules/{schedule_id}/pause").status_code == 400
    with make_sessionmaker(engine)() as session:
        assert store.find(session, name).paused_at is None
