"""`remixq submit` with a spec file, as a user runs it (real subprocesses, the embedded
default): the dry run's figures (JSON and tables) with the default and an overriding price
table, the matrix cap, idempotent re-submission, and each job's variant in status and export."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import remixq
from tests.support.images import png_bytes

UUID_IMAGE = "c64351d5-4c59-42f7-95e1-eace013eddab"
SPEC = """\
name: spring-tins
budget_usd: "25.00"
defaults: {model: "ideogram:4@2", width: 1024, height: 1024, numberResults: 2}
matrix:
  positivePrompt: ["a tea tin, autumn palette", "a tea tin, winter palette"]
  inputs.referenceImages: [["tins/green.png"], ["tins/red.png"]]
  providerSettings.ideogram.renderingSpeed: ["TURBO", "QUALITY"]
jobs:
  - model: "ideogram:4@remix"
    width: 2048
    height: 2048
    numberResults: 1
    positivePrompt: "a tin in 4.0"
    inputs: {seedImage: "tins/red.png"}
"""


def spec_dir(tmp_path: Path, text: str = SPEC, name: str = "spring.yaml") -> Path:
    (tmp_path / "tins").mkdir(exist_ok=True)
    (tmp_path / "tins" / "green.png").write_bytes(png_bytes((2, 2)))
    (tmp_path / "tins" / "red.png").write_bytes(png_bytes((3, 3)))
    path = tmp_path / name
    path.write_text(text)
    return path


def dry_run(tmp_path: Path, path: Path, *args: str, **env: str) -> dict[str, Any]:
    done = remixq(tmp_path, "submit", str(path), "--dry-run", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def test_a_dry_run_prints_the_figures_and_stores_nothing(tmp_path: Path) -> None:
    path = spec_dir(tmp_path)
    figures = dry_run(tmp_path, path)
    # 4 x 2 x 0.03 + 4 x 2 x 0.09 + 1 x 0.06 = 0.24 + 0.72 + 0.06
    assert (figures["jobs"], figures["images"], figures["estimated_cost_usd"]) == (9, 17, "1.02")
    assert figures["by_model"] == {
        "ideogram:4@2": {"jobs": 8, "images": 16, "estimated_cost_usd": "0.96"},
        "ideogram:4@remix": {"jobs": 1, "images": 1, "estimated_cost_usd": "0.06"},
    }
    variants = figures["by_variant"]
    assert len(variants) == 9
    assert variants[0] == {
        "variant": {
            "positivePrompt": "a tea tin, autumn palette",
            "inputs.referenceImages": ["tins/green.png"],
            "providerSettings.ideogram.renderingSpeed": "TURBO",
        },
        "jobs": 1,
        "images": 2,
        "estimated_cost_usd": "0.06",
    }
    assert variants[1]["estimated_cost_usd"] == "0.18"  # QUALITY
    assert variants[-1] == {
        "variant": {"job": 0},
        "jobs": 1,
        "images": 1,
        "estimated_cost_usd": "0.06",
    }
    assert figures["price_table"] == "the default prices"
    assert not (tmp_path / "data").exists()  # no database was opened, let alone written

    table = remixq(tmp_path, "submit", str(path), "--dry-run", env={"COLUMNS": "160"})
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert "by model" in out and "by variant" in out
    assert "ideogram:4@2" in out and "0.96" in out and "ideogram:4@remix" in out
    assert '{"job": 0}' in out and '"providerSettings.ideogram.renderingSpeed": "QUALITY"' in out
    assert "dry run: 9 jobs, 17 images, estimated cost 1.02 USD" in " ".join(out.split())


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_the_price_table_file_overrides_the_defaults(tmp_path: Path, suffix: str) -> None:
    path = spec_dir(tmp_path)
    prices = tmp_path / f"prices{suffix}"
    table = {"ideogram:4@2": {"TURBO": "0.05", "QUALITY": 0.1}, "ideogram:4@remix": "0.25"}
    prices.write_text(json.dumps(table) if suffix == ".json" else _yaml(table))
    figures = dry_run(tmp_path, path, REMIXQ_PRICE_TABLE=str(prices))
    # 8 x 0.05 + 8 x 0.1 + 0.25
    assert figures["estimated_cost_usd"] == "1.45"
    assert figures["by_model"]["ideogram:4@remix"]["estimated_cost_usd"] == "0.25"
    assert figures["price_table"] == f"REMIXQ_PRICE_TABLE {prices}"


def _yaml(table: dict[str, Any]) -> str:
    lines = []
    for model, entry in table.items():
        if isinstance(entry, dict):
            lines.append(f"{model}:")
            lines.extend(f"  {speed}: {price}" for speed, price in entry.items())
        else:
            lines.append(f'{model}: "{entry}"')
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("prices.json", "{nope", "a JSON document"),
        ("prices.yaml", "ideogram:4@2: {TURBO: -1}\n", "ideogram:4@2.TURBO: -1 is not allowed"),
        ("prices.yml", "ideogram:7@7: 0.1\n", "model: 'ideogram:7@7' is not allowed"),
    ],
)
def test_a_bad_price_table_is_one_line(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = spec_dir(tmp_path)
    (tmp_path / name).write_text(text)
    done = remixq(
        tmp_path, "submit", str(path), "--dry-run", env={"REMIXQ_PRICE_TABLE": str(tmp_path / name)}
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: REMIXQ_PRICE_TABLE")
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_a_matrix_past_the_cap_needs_allow_large(tmp_path: Path) -> None:
    path = spec_dir(tmp_path)
    env = {"REMIXQ_MAX_MATRIX_JOBS": "8"}
    refused = remixq(tmp_path, "submit", str(path), "--dry-run", env=env)
    assert refused.returncode == 2
    assert "error: matrix: '2 x 2 x 2 axis values and 1 jobs = 9 jobs' is not allowed" in (
        refused.stderr
    )
    assert "REMIXQ_MAX_MATRIX_JOBS" in refused.stderr and "--allow-large" in refused.stderr
    assert dry_run(tmp_path, path, "--allow-large", **env)["jobs"] == 9


def test_an_invalid_matrix_job_names_its_axis_values(tmp_path: Path) -> None:
    path = spec_dir(tmp_path, SPEC.replace('"QUALITY"', '"SLOW"'))
    done = remixq(tmp_path, "submit", str(path), "--dry-run")
    assert done.returncode == 2
    first = done.stderr.splitlines()[0]
    assert first.startswith(
        'error: matrix {positivePrompt: "a tea tin, autumn palette", inputs.referenceImages:'
        ' ["tins/green.png"], providerSettings.ideogram.renderingSpeed: "SLOW"}:'
        " providerSettings.ideogram.renderingSpeed: 'SLOW' is not allowed"
    )
    assert "(and 3 more errors)" in first  # the four combinations with SLOW


def test_the_same_key_and_content_make_one_campaign(tmp_path: Path) -> None:
    path = spec_dir(tmp_path)
    first = remixq(tmp_path, "submit", str(path), "--idempotency-key", "spring-1", "--json")
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)
    assert (made["name"], made["jobs"], made["replayed"]) == ("spring-tins", 9, False)

    again = remixq(tmp_path, "submit", str(path), "--idempotency-key", "spring-1", "--json")
    assert again.returncode == 0, again.stderr
    replayed = json.loads(again.stdout)
    assert replayed["campaign_id"] == made["campaign_id"] and replayed["name"] == "spring-tins"
    assert (replayed["jobs"], replayed["replayed"]) == (0, True)
    words = remixq(tmp_path, "submit", str(path), "--idempotency-key", "spring-1")
    assert "made by an earlier submission" in words.stdout and words.returncode == 0

    # The same key with other content (or another --campaign) is refused, naming the campaign.
    other = spec_dir(tmp_path, SPEC.replace("numberResults: 2", "numberResults: 3"), "b.yaml")
    for args in (
        [str(other), "--idempotency-key", "spring-1"],
        [str(path), "--idempotency-key", "spring-1", "--campaign", "elsewhere"],
    ):
        refused = remixq(tmp_path, "submit", *args)
        assert refused.returncode == 2
        assert refused.stderr.startswith("error: --idempotency-key: 'spring-1' is not allowed")
        assert f"it made campaign {made['campaign_id']}" in refused.stderr
    report = json.loads(remixq(tmp_path, "status", "spring-tins", "--json").stdout)
    assert len(report["jobs"]) == 9  # nothing stored twice
    campaigns = json.loads(remixq(tmp_path, "campaigns", "--json").stdout)
    assert [c["name"] for c in campaigns] == ["spring-tins"]


def test_variants_show_in_status_and_export(tmp_path: Path) -> None:
    path = spec_dir(tmp_path)
    assert remixq(tmp_path, "submit", str(path)).returncode == 0
    report = json.loads(remixq(tmp_path, "status", "spring-tins", "--json").stdout)
    variants = [job["variant"] for job in report["jobs"]]
    assert variants[0] == {
        "positivePrompt": "a tea tin, autumn palette",
        "inputs.referenceImages": ["tins/green.png"],
        "providerSettings.ideogram.renderingSpeed": "TURBO",
    }
    assert variants[-1] == {"job": 0} and len({json.dumps(v) for v in variants}) == 9

    # Export rows are per image: give the first job one, as a webhook would.
    from sqlalchemy import create_engine, insert, select
    from sqlalchemy.orm import Session

    from remixq.models import Image, Job

    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'remixq.sqlite'}")
    with Session(engine) as session, session.begin():
        job_id = session.scalar(select(Job.id).order_by(Job.id).limit(1))
        session.execute(
            insert(Image).values(
                job_id=job_id,
                image_uuid="0b9a3e5c-4f7e-4a55-9d9e-0f6f1c2b3a4d",
                cost="0.03",
                raw={},
            )
        )
    engine.dispose()
    lines = remixq(tmp_path, "export", "spring-tins", "--format", "jsonl").stdout.splitlines()
    assert json.loads(lines[0])["variant"] == variants[0]
    exported = remixq(tmp_path, "export", "spring-tins", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert json.loads(rows[0]["variant"]) == variants[0]


def test_status_by_variant_compares_the_variants(tmp_path: Path) -> None:
    path = spec_dir(tmp_path)
    assert remixq(tmp_path, "submit", str(path)).returncode == 0
    done = remixq(tmp_path, "status", "spring-tins", "--by", "variant", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["name"], report["by"]) == ("spring-tins", "variant")
    rows = report["variants"]
    assert len(rows) == 9 and rows[-1]["variant"] == {"job": 0}
    assert rows[0] == {
        "variant": {
            "positivePrompt": "a tea tin, autumn palette",
            "inputs.referenceImages": ["tins/green.png"],
            "providerSettings.ideogram.renderingSpeed": "TURBO",
        },
        "jobs": 1,
        "counts": {"queued": 1},
        "images": 0,
        "estimated_usd": "0.06",  # 2 images at TURBO
        "reserved_usd": "0.06",
        "spent_usd": "0.00",
        "overrun_usd": "0.00",
        "spent_estimated_usd": "0.00",
    }
    assert sum(Decimal(row["estimated_usd"]) for row in rows) == Decimal("1.02")  # the dry run

    table = remixq(tmp_path, "status", "spring-tins", "--by", "variant", env={"COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert "campaign spring-tins (id 1) by variant" in table.stdout
    assert (
        'positivePrompt="a tea tin, autumn palette", inputs.referenceImages=["tins/green.png"],'
        ' providerSettings.ideogram.renderingSpeed="TURBO"'
    ) in table.stdout
    assert "9 variants, 9 jobs; 0 images" in table.stdout
    # Each job's row in the plain table names its variant too.
    jobs_table = remixq(tmp_path, "status", "spring-tins", env={"COLUMNS": "200"}).stdout
    assert "job=0" in jobs_table and 'renderingSpeed="QUALITY"' in jobs_table
