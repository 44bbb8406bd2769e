"""The dashboard's submit page through Flask's test client (both backends): errors per line or
matrix cell with nothing stored, the dry-run estimate, and the confirmation (once)."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from remixq.models import Campaign, Job
from tests.support.dashboard import Dashboard, csrf_of, dashboard, new_key

SPEC = """
name: {name}
budget_usd: "5.00"
defaults: {{model: "ideogram:4@2", width: 1024, height: 1024, numberResults: 2,
           inputs: {{referenceImages: ["https://assets.example.test/a.jpg"]}}}}
matrix:
  positivePrompt: ["an autumn tin", "a winter tin"]
  providerSettings.ideogram.stylePreset: ["BRIGHT_ART", "{style}"]
"""
LINE = {
    "model": "ideogram:4@2",
    "positivePrompt": "A retro cereal box",
    "width": 1344,
    "height": 768,
    "inputs": {"referenceImages": ["https://assets.example.test/inputs/source.jpg"]},
}


@pytest.fixture
def ui(engine: Engine, tmp_path: Path) -> Iterator[Dashboard]:
    with dashboard(engine, tmp_path) as client:
        _, key = new_key(engine)
        client.sign_in(key)
        yield client


def _upload(ui: Dashboard, filename: str, content: str, **fields: str):  # type: ignore[no-untyped-def]
    token = csrf_of(ui.client.get("/submit"))
    data = {"csrf_token": token, "file": (io.BytesIO(content.encode()), filename), **fields}
    return ui.client.post("/submit", data=data, content_type="multipart/form-data")


def _campaigns(engine: Engine, name: str) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).where(Campaign.name == name)) or 0


def test_a_bad_matrix_cell_is_named_and_nothing_is_stored(ui: Dashboard, engine: Engine) -> None:
    name = f"tins-{uuid.uuid4().hex[:8]}"
    response = _upload(ui, "tins.yaml", SPEC.format(name=name, style="NOPE"))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "2 problems: nothing was stored" in text
    assert "matrix {positivePrompt: &#34;an autumn tin&#34;" in text and "NOPE" in text
    assert "providerSettings.ideogram.stylePreset" in text
    assert _campaigns(engine, name) == 0


def test_bad_lines_of_a_jsonl_file_are_named(ui: Dashboard) -> None:
    lines = [json.dumps(LINE), json.dumps({**LINE, "numberResults": 99}), "{not json"]
    response = _upload(ui, "c.jsonl", "\n".join(lines) + "\n")
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert re.search(r"<th scope=\"row\">line 2</th><td><code>numberResults</code>", text)
    assert "line 3" in text


def test_a_file_of_another_kind_is_refused(ui: Dashboard) -> None:
    response = _upload(ui, "c.txt", "hello")
    assert response.status_code == 422
    assert ".jsonl, .ndjson or .csv campaign file" in response.get_data(as_text=True)


def test_the_dry_run_shows_the_estimate_then_confirm_stores_once(
    ui: Dashboard, engine: Engine
) -> None:
    name = f"tins-{uuid.uuid4().hex[:8]}"
    preview = _upload(ui, "tins.yaml", SPEC.format(name=name, style="POP_ART"))
    assert preview.status_code == 200
    text = preview.get_data(as_text=True)
    # 4 jobs x 2 images at 0.06 (the default price of ideogram:4@2 at DEFAULT speed)
    assert "<strong>4</strong> jobs, <strong>8</strong> images" in text and "$0.48" in text
    assert _campaigns(engine, name) == 0
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', text))
    confirm = ui.client.post("/submit/confirm", data=form)
    assert confirm.status_code == 302
    again = ui.client.post("/submit/confirm", data=form)  # a double click
    assert again.headers["Location"] == confirm.headers["Location"]
    with Session(engine) as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == name))
        assert campaign is not None and str(campaign.budget_usd) == "5.0000000000"
        jobs = list(session.scalars(select(Job).where(Job.campaign_id == campaign.id)))
    assert len(jobs) == 4 and all(job.variant for job in jobs)
    assert confirm.headers["Location"] == f"/campaigns/{campaign.id}"


def test_a_read_only_key_may_check_but_not_submit(engine: Engine, tmp_path: Path) -> None:
    with dashboard(engine, tmp_path) as ui:
        _, key = new_key(engine, read_only=True)
        ui.sign_in(key)
        name = f"ro-{uuid.uuid4().hex[:8]}"
        preview = _upload(ui, "c.jsonl", json.dumps(LINE) + "\n", name=name)
        assert preview.status_code == 200
        text = preview.get_data(as_text=True)
        assert "can check a file, not submit it" in text
        form = {"csrf_token": csrf_of(preview), "filename": "c.jsonl", "token": "x" * 16}
        assert ui.client.post("/submit/confirm", data=form).status_code == 403
        assert _campaigns(engine, name) == 0


def test_a_name_in_use_is_refused_on_confirm(ui: Dashboard, engine: Engine) -> None:
    name = f"taken-{uuid.uuid4().hex[:8]}"
    with Session(engine) as session, session.begin():
        session.add(Campaign(name=name))
    preview = _upload(ui, "c.jsonl", json.dumps(LINE) + "\n", name=name)
    form = dict(
        re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', preview.get_data(True))
    )
    response = ui.client.post("/submit/confirm", data=form)
    assert response.status_code == 409
    assert "is taken" in response.get_data(as_text=True)
