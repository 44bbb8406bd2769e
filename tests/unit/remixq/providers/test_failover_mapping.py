"""The failover mapping (remixq.providers.failover): one test per row of the table, each on a
stored Runware ideogram:4@2 task as the producers build it, and the fields without an
equivalent refused by name rather than dropped."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from remixq.providers.failover import TABLE, NoEquivalent, to_ideogram
from remixq.providers.runware.provider import PROVIDER as RUNWARE
from tests.support.ideogram_requests import JPEG, PNG
from tests.support.images import png_bytes

TASK_UUID = "0b5a3e7c-2f4d-4c1e-9a8b-6d2f1e3c4b5a"
IMAGE_URL = "https://assets.example.test/in.png"


def stored(**changes: Any) -> dict[str, Any]:
    """A stored task (as `jobs.request` holds it) of a valid ideogram:4@2 line plus `changes`
    (merged into providerSettings.ideogram under the key `ideogram`)."""
    ideogram = changes.pop("ideogram", None)
    line: dict[str, Any] = {
        "model": "ideogram:4@2",
        "positivePrompt": "a tea tin, autumn",
        "width": 1024,
        "height": 1024,
        "inputs": {"referenceImages": [IMAGE_URL]},
        **changes,
    }
    if ideogram is not None:
        line["providerSettings"] = {"ideogram": ideogram}
    return RUNWARE.build_task(RUNWARE.parse_request(line), task_uuid=TASK_UUID)


BASE = {"prompt": "a tea tin, autumn", "resolution": "1024x1024", "image": IMAGE_URL}


def mapped(**changes: Any) -> dict[str, Any]:
    return to_ideogram(stored(**changes))


def refused(task: dict[str, Any]) -> NoEquivalent:
    with pytest.raises(NoEquivalent) as caught:
        to_ideogram(task)
    return caught.value


# One case per row: (row, a check). Every row of TABLE has one (test_every_row_is_tested).
def _model() -> None:
    assert to_ideogram(stored()) == BASE
    task = stored() | {"model": "ideogram:1@2"}
    assert refused(task).field == "model"


def _task_type() -> None:
    assert "taskType" not in mapped()
    assert refused(stored() | {"taskType": "imageUpload"}).field == "taskType"


def _task_uuid() -> None:
    assert TASK_UUID not in str(mapped())  # the new job has its own key; nothing sent


def _managed() -> None:
    task = stored() | {"webhookURL": "https://hooks.example.test/x"}
    assert task["deliveryMethod"] == "async" and task["includeCost"] is True
    assert to_ideogram(task) == BASE


def _positive_prompt() -> None:
    assert mapped(positivePrompt="a lantern")["prompt"] == "a lantern"


def _negative_prompt() -> None:
    assert mapped(negativePrompt="blurry")["negative_prompt"] == "blurry"


def _seed() -> None:
    assert to_ideogram(stored() | {"seed": 42})["seed"] == 42


def _dimensions() -> None:
    assert mapped(width=1344, height=768)["resolution"] == "1344x768"
    error = refused(stored(width=1000, height=1000))
    assert (error.field, error.value) == ("width x height", "1000x1000")


def _number_results() -> None:
    assert mapped(numberResults=4)["num_images"] == 4
    assert refused(stored(numberResults=9)).field == "numberResults"


def _reference_images() -> None:
    assert mapped(inputs={"referenceImages": [PNG]})["image"] == PNG
    raw = base64.b64encode(png_bytes()).decode()
    assert mapped(inputs={"referenceImages": [raw]})["image"] == "data:image/png;base64," + raw
    uuid_ref = stored(inputs={"referenceImages": ["c64351d5-4c59-42f7-95e1-eace013eddab"]})
    assert refused(uuid_ref).field == "inputs.referenceImages[0]"


def _rendering_speed() -> None:
    assert mapped(ideogram={"renderingSpeed": "TURBO"})["rendering_speed"] == "TURBO"


def _magic_prompt() -> None:
    assert mapped(ideogram={"magicPrompt": "OFF"})["magic_prompt"] == "OFF"


def _style_type() -> None:
    assert mapped(ideogram={"styleType": "REALISTIC"})["style_type"] == "REALISTIC"
    assert refused(stored(ideogram={"styleType": "ANIME"})).value == "ANIME"


def _style_preset() -> None:
    preset = mapped(ideogram={"stylePreset": "WATERCOLOR"})
    assert preset["style_preset"] == "WATERCOLOR"


def _style_code() -> None:
    assert mapped(ideogram={"styleCode": "1A2B3C4D"})["style_codes"] == ["1A2B3C4D"]


def _remix_strength() -> None:
    assert mapped(ideogram={"remixStrength": 70})["image_weight"] == 70


def _style_reference_images() -> None:
    out = mapped(ideogram={"styleReferenceImages": [JPEG, IMAGE_URL]})
    assert out["style_reference_images"] == [JPEG, IMAGE_URL]


def _character_reference_images() -> None:
    out = mapped(ideogram={"characterReferenceImages": [PNG]})
    assert out["character_reference_images"] == [PNG]


def _character_reference_images_mask() -> None:
    out = mapped(
        ideogram={"characterReferenceImages": [PNG], "characterReferenceImagesMask": [JPEG]}
    )
    assert out["character_reference_images_mask"] == [JPEG]


def _color_palette() -> None:
    # Runware's schema takes no colorPalette today; a stored task holding one maps as is.
    task = stored()
    task["providerSettings"] = {"ideogram": {"colorPalette": {"name": "EMBER"}}}
    assert to_ideogram(task)["color_palette"] == {"name": "EMBER"}


def _output_type() -> None:
    assert mapped(outputType="URL") == BASE
    assert refused(stored(outputType="base64Data")).field == "outputType"


def _output_format() -> None:
    assert refused(stored(outputFormat="PNG")).field == "outputFormat"


def _output_quality() -> None:
    assert refused(stored(outputQuality=90)).field == "outputQuality"


def _upload_endpoint() -> None:
    error = refused(stored(uploadEndpoint="https://uploads.example.test/put"))
    assert error.field == "uploadEndpoint" and "uploads nowhere" in error.reason


def _ttl() -> None:
    assert refused(stored(outputType="URL", ttl=120)).field == "ttl"


def _check_content() -> None:
    assert mapped(safety={"checkContent": True}) == BASE
    assert refused(stored(safety={"checkContent": False})).field == "safety.checkContent"


def _safety_mode() -> None:
    assert refused(stored(safety={"mode": "fast"})).field == "safety.mode"


CASES = {
    "model": _model,
    "taskType": _task_type,
    "taskUUID": _task_uuid,
    "deliveryMethod": _managed,
    "includeCost": _managed,
    "webhookURL": _managed,
    "positivePrompt": _positive_prompt,
    "negativePrompt": _negative_prompt,
    "seed": _seed,
    "width x height": _dimensions,
    "numberResults": _number_results,
    "inputs.referenceImages": _reference_images,
    "providerSettings.ideogram.renderingSpeed": _rendering_speed,
    "providerSettings.ideogram.magicPrompt": _magic_prompt,
    "providerSettings.ideogram.styleType": _style_type,
    "providerSettings.ideogram.stylePreset": _style_preset,
    "providerSettings.ideogram.styleCode": _style_code,
    "providerSettings.ideogram.remixStrength": _remix_strength,
    "providerSettings.ideogram.styleReferenceImages": _style_reference_images,
    "providerSettings.ideogram.characterReferenceImages": _character_reference_images,
    "providerSettings.ideogram.characterReferenceImagesMask": _character_reference_images_mask,
    "providerSettings.ideogram.colorPalette": _color_palette,
    "outputType": _output_type,
    "outputFormat": _output_format,
    "outputQuality": _output_quality,
    "uploadEndpoint": _upload_endpoint,
    "ttl": _ttl,
    "safety.checkContent": _check_content,
    "safety.mode": _safety_mode,
}


def test_every_row_is_tested() -> None:
    assert [row.runware for row in TABLE] == list(CASES)


@pytest.mark.parametrize("row", [row.runware for row in TABLE])
def test_row(row: str) -> None:
    CASES[row]()


def test_a_field_outside_the_table_is_refused_by_name() -> None:
    task = stored()
    task["providerSettings"] = {"other": {"x": 1}}
    error = refused(task)
    assert error.field == "providerSettings.other"
    assert "no Ideogram field takes it" in str(error)


def test_a_value_ideogram_refuses_names_its_field() -> None:
    # styleCode with a style type: Ideogram refuses the pair (page 004), named by its field.
    task = stored()
    task["providerSettings"] = {"ideogram": {"styleCode": "1A2B3C4D", "styleType": "GENERAL"}}
    error = refused(task)
    assert "Ideogram refuses it" in error.reason
