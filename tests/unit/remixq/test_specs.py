"""Campaign specs: the matrix's product over the defaults, explicit jobs merged over them, the
cap computed before expanding, errors located by axis values or job index, YAML and JSON files,
and local images read once per campaign."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from remixq.errors import InvalidInput
from remixq.local_images import LocalImages
from remixq.producing import NewJob
from remixq.providers.runware import build_task
from remixq.specs import HARD_MAX_JOBS, Spec, load_spec_file, parse_spec, read_spec
from remixq.url_policy import UrlPolicy
from tests.support.images import png_bytes

UUID_IMAGE = "c64351d5-4c59-42f7-95e1-eace013eddab"
DEFAULTS: dict[str, Any] = {
    "model": "ideogram:4@2",
    "width": 1024,
    "height": 1024,
    "numberResults": 2,
    "positivePrompt": "a tea tin",
    "inputs": {"referenceImages": [UUID_IMAGE]},
}


def expanded(
    document: dict[str, Any],
    *,
    local: LocalImages | None = None,
    max_jobs: int = 10_000,
    allow_large: bool = False,
) -> list[NewJob]:
    return read_spec(
        parse_spec(document),
        local_images=local,
        urls=UrlPolicy(),
        max_jobs=max_jobs,
        allow_large=allow_large,
    )


def task(job: NewJob) -> dict[str, Any]:
    return build_task(job.request, task_uuid=str(uuid.uuid4()), webhook_url=None)


def test_the_matrix_is_the_product_of_its_axes_over_the_defaults() -> None:
    prompts = ["a tea tin, autumn palette", "a tea tin, winter palette", "a tea tin, spring"]
    presets = ["BRIGHT_ART", "VINTAGE_POSTER"]
    jobs = expanded(
        {
            "defaults": DEFAULTS,
            "matrix": {
                "positivePrompt": prompts,
                "providerSettings.ideogram.stylePreset": presets,
            },
        }
    )
    assert len(jobs) == 6
    tasks = [task(job) for job in jobs]
    combos = [
        (t["positivePrompt"], t["providerSettings"]["ideogram"]["stylePreset"]) for t in tasks
    ]
    assert combos == [(p, s) for p in prompts for s in presets]  # the first axis slowest
    assert all(t["numberResults"] == 2 and t["width"] == 1024 for t in tasks)  # the defaults
    assert jobs[0].variant == {
        "positivePrompt": prompts[0],
        "providerSettings.ideogram.stylePreset": "BRIGHT_ART",
    }
    assert jobs[5].location == (
        'matrix {positivePrompt: "a tea tin, spring", '
        'providerSettings.ideogram.stylePreset: "VINTAGE_POSTER"}'
    )


def test_a_nested_axis_keeps_the_defaults_siblings() -> None:
    defaults = {
        **DEFAULTS,
        "providerSettings": {"ideogram": {"renderingSpeed": "TURBO", "magicPrompt": "OFF"}},
    }
    jobs = expanded(
        {
            "defaults": defaults,
            "matrix": {"providerSettings.ideogram.remixStrength": [10, 90]},
        }
    )
    ideogram = [task(job)["providerSettings"]["ideogram"] for job in jobs]
    assert ideogram == [
        {"renderingSpeed": "TURBO", "magicPrompt": "OFF", "remixStrength": 10},
        {"renderingSpeed": "TURBO", "magicPrompt": "OFF", "remixStrength": 90},
    ]
    assert defaults["providerSettings"]["ideogram"] == {  # the defaults were not touched
        "renderingSpeed": "TURBO",
        "magicPrompt": "OFF",
    }


def test_an_axis_over_a_list_field_sets_each_list_whole() -> None:
    other = "0b9a3e5c-4f7e-4a55-9d9e-0f6f1c2b3a4d"
    jobs = expanded(
        {"defaults": DEFAULTS, "matrix": {"inputs.referenceImages": [[UUID_IMAGE], [other]]}}
    )
    assert [task(job)["inputs"]["referenceImages"] for job in jobs] == [[UUID_IMAGE], [other]]
    assert [job.variant for job in jobs] == [
        {"inputs.referenceImages": [UUID_IMAGE]},
        {"inputs.referenceImages": [other]},
    ]


def test_explicit_jobs_are_merged_over_the_defaults_after_the_matrix() -> None:
    jobs = expanded(
        {
            "defaults": {**DEFAULTS, "providerSettings": {"ideogram": {"magicPrompt": "ON"}}},
            "matrix": {"numberResults": [1, 3]},
            "jobs": [
                {"positivePrompt": "one tin",
                 "providerSettings": {"ideogram": {"styleType": "AUTO"}}},
                {"model": "ideogram:4@remix", "width": 2048, "height": 2048,
                 "inputs": {"seedImage": UUID_IMAGE, "referenceImages": None},
                 "providerSettings": None},
            ],
        }
    )  # fmt: skip
    assert len(jobs) == 4
    assert [job.variant for job in jobs] == [
        {"numberResults": 1},
        {"numberResults": 3},
        {"job": 0},
        {"job": 1},
    ]
    first = task(jobs[2])
    assert first["positivePrompt"] == "one tin" and first["numberResults"] == 2
    assert first["providerSettings"]["ideogram"] == {"magicPrompt": "ON", "styleType": "AUTO"}
    assert jobs[2].location == "job 0"


def test_explicit_jobs_alone_need_no_matrix() -> None:
    jobs = expanded({"jobs": [DEFAULTS, {**DEFAULTS, "numberResults": 4}]})
    assert [task(job)["numberResults"] for job in jobs] == [2, 4]


def test_errors_name_the_axis_values_and_the_job_index() -> None:
    with pytest.raises(InvalidInput) as refused:
        expanded(
            {
                "defaults": DEFAULTS,
                "matrix": {
                    "positivePrompt": ["a tin"],
                    "providerSettings.ideogram.stylePreset": ["BRIGHT_ART", "NOPE"],
                },
                "jobs": [{"numberResults": 99}],
            }
        )
    errors = refused.value.errors
    assert [(e.location, e.field, e.value) for e in errors] == [
        (
            'matrix {positivePrompt: "a tin", providerSettings.ideogram.stylePreset: "NOPE"}',
            "providerSettings.ideogram.stylePreset",
            "NOPE",
        ),
        ("job 0", "jobs[0].numberResults", 99),
    ]
    assert str(refused.value).startswith('matrix {positivePrompt: "a tin", ')


def test_an_axis_through_a_non_object_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as refused:
        expanded({"defaults": DEFAULTS, "matrix": {"positivePrompt.inner": ["a", "b"]}})
    first = refused.value.errors[0]
    assert first.field == "positivePrompt" and first.value == "a tea tin"
    assert "an object, for the matrix axis positivePrompt.inner" in first.allowed
    assert first.location == 'matrix {positivePrompt.inner: "a"}'


def test_the_cap_is_checked_from_the_axes_lengths_before_expanding() -> None:
    # 100^4 = 100,000,000 combinations: refused at once, nothing expanded.
    axes = {f"a{n}": list(range(100)) for n in range(4)}
    spec = parse_spec({"defaults": DEFAULTS, "matrix": axes})
    assert spec.matrix_jobs == 100_000_000
    with pytest.raises(InvalidInput) as refused:
        read_spec(spec, local_images=None, urls=UrlPolicy(), max_jobs=10_000)
    [error] = refused.value.errors
    assert error.field == "matrix"
    assert error.value == "100 x 100 x 100 x 100 axis values and 0 jobs = 100,000,000 jobs"
    assert "at most 10,000 jobs (REMIXQ_MAX_MATRIX_JOBS)" in error.allowed
    assert "--allow-large" in error.allowed
    with pytest.raises(InvalidInput, match=f"at most {HARD_MAX_JOBS:,} jobs in one spec"):
        read_spec(spec, local_images=None, urls=UrlPolicy(), max_jobs=10_000, allow_large=True)


def test_past_the_cap_only_when_allowed() -> None:
    document = {"defaults": DEFAULTS, "matrix": {"numberResults": [1, 2, 3]}, "jobs": [DEFAULTS]}
    with pytest.raises(InvalidInput, match="3 axis values and 1 jobs = 4 jobs"):
        expanded(document, max_jobs=3)
    assert len(expanded(document, max_jobs=3, allow_large=True)) == 4
    assert len(expanded(document, max_jobs=4)) == 4


@pytest.mark.parametrize(
    ("document", "field", "allowed"),
    [
        ([DEFAULTS], "(spec)", "a mapping with name"),
        ({"defaults": DEFAULTS, "matrixx": {}}, "matrixx", "one of the keys name, budget_usd"),
        ({"defaults": DEFAULTS}, "jobs", "at least one job"),
        ({"matrix": {"numberResults": []}}, "matrix.numberResults", "a non-empty list"),
        ({"matrix": {"numberResults": 2}}, "matrix.numberResults", "a non-empty list"),
        ({"matrix": {"inputs..x": [1]}}, "matrix.inputs..x", "a dotted field path"),
        ({"matrix": ["numberResults"]}, "matrix", "a mapping of dotted field path"),
        ({"defaults": [1], "jobs": [{}]}, "defaults", "a mapping of request fields"),
        ({"jobs": {"a": 1}}, "jobs", "a list of requests"),
        ({"name": "", "jobs": [DEFAULTS]}, "name", "1 to 200 characters"),
        ({"budget_usd": "-1", "jobs": [DEFAULTS]}, "budget_usd", "above 0"),
        ({"budget_usd": "lots", "jobs": [DEFAULTS]}, "budget_usd", "above 0"),
        ({"budget_usd": True, "jobs": [DEFAULTS]}, "budget_usd", "above 0"),
        ({"budget_usd": "1e9", "jobs": [DEFAULTS]}, "budget_usd", "below 100,000,000"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_part(document: object, field: str, allowed: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_spec(document)
    assert any(e.field == field and allowed in e.allowed for e in refused.value.errors), (
        refused.value.errors
    )


@pytest.mark.parametrize("budget", ["25.00", 25, 25.0, "25"])
def test_a_budget_is_exact(budget: object) -> None:
    spec = parse_spec({"budget_usd": budget, "jobs": [DEFAULTS]})
    assert spec.budget_usd == Decimal(25)
    assert parse_spec({"budget_usd": 0.1, "jobs": [DEFAULTS]}).budget_usd == Decimal("0.1")


SPEC_YAML = """\
name: spring-tins
budget_usd: "25.00"
defaults: {model: "ideogram:4@2", width: 1024, height: 1024, numberResults: 2}
matrix:
  positivePrompt: ["a tea tin, autumn palette", "a tea tin, winter palette"]
  inputs.referenceImages: [["tins/green.png"], ["tins/red.png"]]
  providerSettings.ideogram.stylePreset: ["BRIGHT_ART", "VINTAGE_POSTER"]
jobs: []
"""


def _tins(tmp_path: Path) -> None:
    (tmp_path / "tins").mkdir()
    (tmp_path / "tins" / "green.png").write_bytes(png_bytes((2, 2)))
    (tmp_path / "tins" / "red.png").write_bytes(png_bytes((3, 3)))


def test_the_issues_yaml_spec_makes_eight_jobs_reading_each_image_once(tmp_path: Path) -> None:
    _tins(tmp_path)
    path = tmp_path / "spring.yaml"
    path.write_text(SPEC_YAML)
    spec = load_spec_file(path)
    assert (spec.name, spec.budget_usd, spec.matrix_jobs) == ("spring-tins", Decimal(25), 8)
    local = LocalImages(tmp_path)
    jobs = read_spec(spec, local_images=local, urls=UrlPolicy(), max_jobs=10_000)
    assert len(jobs) == 8
    images = {task(job)["inputs"]["referenceImages"][0] for job in jobs}
    assert len(images) == 2 and all(i.startswith("data:image/png;base64,") for i in images)
    assert len(local._read) == 2  # two files, each read and encoded once for eight jobs
    # The variant keeps the path as written, not the bytes sent.
    assert jobs[0].variant == {
        "positivePrompt": "a tea tin, autumn palette",
        "inputs.referenceImages": ["tins/green.png"],
        "providerSettings.ideogram.stylePreset": "BRIGHT_ART",
    }


def test_a_json_spec_is_read_the_same(tmp_path: Path) -> None:
    _tins(tmp_path)
    yaml_path, json_path = tmp_path / "a.yml", tmp_path / "a.json"
    yaml_path.write_text(SPEC_YAML)
    document = {
        "name": "spring-tins",
        "budget_usd": "25.00",
        "defaults": {"model": "ideogram:4@2", "width": 1024, "height": 1024, "numberResults": 2},
        "matrix": {
            "positivePrompt": ["a tea tin, autumn palette", "a tea tin, winter palette"],
            "inputs.referenceImages": [["tins/green.png"], ["tins/red.png"]],
            "providerSettings.ideogram.stylePreset": ["BRIGHT_ART", "VINTAGE_POSTER"],
        },
        "jobs": [],
    }
    json_path.write_text(json.dumps(document))
    assert (
        load_spec_file(json_path)
        == load_spec_file(yaml_path)
        == Spec(
            name="spring-tins",
            budget_usd=Decimal(25),
            defaults=document["defaults"],
            matrix=document["matrix"],
            jobs=[],
        )
    )


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("s.yaml", "matrix: [1\n", "a YAML document"),
        ("s.json", '{"matrix": ', "a JSON document"),
        ("s.yaml", "d: &a [1, 2]\njobs: [*a]\n", "aliases (*name) are not accepted"),
        ("s.txt", "jobs: []", "a .yaml, .yml or .json spec file"),
        ("s.yaml", b"\xff\xfe", "a UTF-8 text file"),
    ],
)
def test_a_bad_spec_file_is_one_error_naming_it(
    tmp_path: Path, name: str, text: str | bytes, expected: str
) -> None:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(InvalidInput) as refused:
        load_spec_file(path)
    [error] = refused.value.errors
    assert error.field == "FILE" and expected in error.allowed
