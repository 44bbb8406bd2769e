"""`remixq campaigns`, `cancel`, `pause`, `resume`, `export` and `status` on a large campaign, as a
user meets them (real subprocesses, the embedded default)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select, update
from sqlalchemy.orm import Session

from remixq.models import Image, Job
from tests.support.cli import remixq
from tests.support.factories import bulk_campaign

REQUEST = {
    "model": "ideogram:4@2",
    "positivePrompt": "a poster",
    "width": 1024,
    "height": 1024,
    "inputs": {"referenceImages": ["c64351d5-4c59-42f7-95e1-eace013eddab"]},
}


def submitted(tmp_path: Path, name: str = "spring", jobs: int = 3) -> None:
    file = tmp_path / f"{name}.jsonl"
    file.write_text("".join(json.dumps(REQUEST) + "\n" for _ in range(jobs)))
    done = remixq(tmp_path, "submit", str(file), "--campaign", name)
    assert done.returncode == 0, done.stderr


def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'remixq.sqlite'}"


def complete_first_job(tmp_path: Path) -> str:
    """The first job completed with one image costing 0.04; the image's UUID."""
    engine = create_engine(database(tmp_path))
    image_uuid = str(uuid.uuid4())
    with engine.begin() as connection:
        job_id = connection.scalar(select(Job.id).order_by(Job.id).limit(1))
        connection.execute(
            update(Job).where(Job.id == job_id).values(status="completed", results_received=1)
        )
        connection.execute(
            insert(Image).values(
                job_id=job_id,
                image_uuid=image_uuid,
                image_url="https://im.example/1.jpg",
                seed=11,
                nsfw=False,
                cost=Decimal("0.04"),
                raw={},
            )
        )
    engine.dispose()
    return image_uuid


def test_campaigns_lists_jobs_by_status_images_and_cost(tmp_path: Path) -> None:
    submitted(tmp_path, "spring")
    submitted(tmp_path, "autumn", jobs=1)
    complete_first_job(tmp_path)

    done = remixq(tmp_path, "campaigns", "--json")

    assert done.returncode == 0, done.stderr
    spring, autumn = json.loads(done.stdout)
    assert (spring["name"], spring["counts"], spring["images"], spring["cost_usd"]) == (
        "spring", {"completed": 1, "queued": 2}, 1, "0.04"
    )  # fmt: skip
    assert autumn["id"] > spring["id"] and autumn["counts"] == {"queued": 1}
    table = remixq(tmp_path, "campaigns", env={"COLUMNS": "120"})
    assert "spring" in table.stdout and "1 completed, 2 queued" in table.stdout
    assert "0.04" in table.stdout


def test_pause_resume_and_cancel_as_a_user_meets_them(tmp_path: Path) -> None:
    submitted(tmp_path, "spring")

    paused = remixq(tmp_path, "pause", "spring")
    assert paused.returncode == 0, paused.stderr
    assert "paused: nothing of it is submitted until remixq resume 1" in paused.stdout
    assert "already" in remixq(tmp_path, "pause", "spring").stdout
    report = json.loads(remixq(tmp_path, "status", "spring", "--json").stdout)
    assert report["counts"] == {"pending": 3} and report["paused_by"] == "user"
    # Without a campaign, resume lifts only the account's pauses.
    assert "nothing to resume" in remixq(tmp_path, "resume").stdout
    resumed = remixq(tmp_path, "resume", "spring", "--json")
    assert json.loads(resumed.stdout)["jobs"] == 3

    cancelled = remixq(tmp_path, "cancel", "spring", "--json")

    assert cancelled.returncode == 0, cancelled.stderr
    answer = json.loads(cancelled.stdout)
    assert answer["cancelled"] == 3 and answer["summary"]["counts"] == {"cancelled": 3}
    assert answer["summary"]["cancelled_at"] is not None
    again = remixq(tmp_path, "cancel", "spring")
    assert again.stdout.strip().endswith("was cancelled already")
    assert "it was cancelled" in remixq(tmp_path, "pause", "spring").stdout
    status = remixq(tmp_path, "status", "spring")
    assert status.returncode == 0 and "cancelled at" in status.stdout


@pytest.mark.parametrize("command", ["cancel", "pause", "resume", "export", "status"])
def test_an_unknown_campaign_is_one_line(tmp_path: Path, command: str) -> None:
    submitted(tmp_path, "spring", jobs=1)

    done = remixq(tmp_path, command, "nope")

    assert done.returncode == 2
    assert done.stderr.startswith("error: CAMPAIGN: 'nope' is not allowed")
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""


def test_export_writes_one_row_per_image_as_csv_or_json_lines(tmp_path: Path) -> None:
    submitted(tmp_path, "spring")
    image_uuid = complete_first_job(tmp_path)

    lines = remixq(tmp_path, "export", "spring", "--format", "jsonl")
    table = remixq(tmp_path, "export", "spring", "--format", "csv")
    written = remixq(tmp_path, "export", "1", "--format", "csv", "--output", "out.csv")

    assert lines.returncode == table.returncode == written.returncode == 0, written.stderr
    (row,) = [json.loads(line) for line in lines.stdout.splitlines()]
    assert row["image_uuid"] == image_uuid and row["campaign"] == "spring"
    assert row["prompt"] == "a poster" and row["cost_usd"] == "0.04" and row["seed"] == 11
    assert row["parameters"]["inputs"] == REQUEST["inputs"] and row["nsfw"] is False
    (cells,) = list(csv.DictReader(io.StringIO(table.stdout)))
    assert cells["image_uuid"] == image_uuid and cells["cost_usd"] == "0.04"
    assert json.loads(cells["parameters"])["width"] == 1024 and cells["nsfw"] == "false"
    assert (tmp_path / "out.csv").read_text() == table.stdout
    assert "1 image(s) of campaign 'spring' written to out.csv" in written.stderr
    bad = remixq(tmp_path, "export", "spring", "--format", "xml")
    assert bad.returncode == 2 and "'xml' is not one of 'csv', 'jsonl'" in bad.stderr


def test_status_of_a_large_campaign_lists_a_page_and_totals_everything(tmp_path: Path) -> None:
    assert remixq(tmp_path, "db", "upgrade").returncode == 0
    engine = create_engine(database(tmp_path))
    with Session(engine) as session, session.begin():
        campaign_id = bulk_campaign(session, jobs=3000)
    engine.dispose()

    table = remixq(tmp_path, "status", f"#{campaign_id}", "--limit", "5", env={"COLUMNS": "120"})
    document = remixq(tmp_path, "status", f"#{campaign_id}", "--json")

    assert table.returncode == 0, table.stderr
    assert "(the first 5 of 3000 jobs" in table.stdout
    assert "3000 jobs (3000 completed); 3000 images; total cost 120.00 USD" in table.stdout
    report = json.loads(document.stdout)
    assert len(report["jobs"]) == 3000 and report["superseded"] == []
    assert report["images"] == 3000 and report["cost_usd"] == "120.00"


def test_export_images_lists_what_has_no_copy_and_refuses_output(tmp_path: Path) -> None:
    """`--images DIR` writes the stored copies (none yet: the image is pending) and a manifest
    of every image with its asset status; with `--output` it is refused in one line."""
    submitted(tmp_path, "spring")
    image_uuid = complete_first_job(tmp_path)
    done = remixq(tmp_path, "export", "spring", "--images", "out", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert "0 of 1 image(s) of campaign 'spring' written to out" in done.stderr
    (cells,) = list(csv.DictReader(io.StringIO((tmp_path / "out" / "manifest.csv").read_text())))
    assert cells["image_uuid"] == image_uuid and cells["asset_status"] == "pending"
    assert cells["file"] == "" and "storage_key" not in cells
    both = remixq(tmp_path, "export", "spring", "--images", "out", "--output", "x.jsonl")
    assert both.returncode == 2 and both.stderr.startswith("error: --output: 'x.jsonl'")
    assert len(both.stderr.strip().splitlines()) == 1
