"""Validation of imageInference tasks against each model's documented parameter table."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from simulator.models import STYLE_PRESETS
from tests.support.simulator import AUTH, get_response, simulator_of, task


def _one_error(client: FlaskClient, body: Any) -> dict[str, Any]:
    answer = client.post("/v1", json=body, headers=AUTH)
    assert answer.status_code == 400, answer.json
    assert answer.json is not None and "data" not in answer.json
    (error,) = answer.json["errors"]
    assert isinstance(error, dict)
    return error


def _without(body: dict[str, Any], path: str) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node[key]
    del node[leaf]
    return body


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return body


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("ideogram:1@2", "seedImage"),
        ("ideogram:1@2", "providerSettings.ideogram.stylePreset"),  # 3.0 only
        ("ideogram:1@2", "inputs.seedImage"),
        ("ideogram:1@2", "safety.mode2"),
        ("ideogram:4@2", "strength"),
        ("ideogram:4@2", "providerSettings.openai"),
        ("ideogram:4@remix", "negativePrompt"),
        ("ideogram:4@remix", "providerSettings"),
        ("ideogram:4@remix", "safety.mode"),  # 4.0 safety has checkContent only
        ("ideogram:4@remix", "settings.structuredPrompt"),
        ("ideogram:4@remix", "inputs.referenceImages"),
        ("ideogram:4@remix", "seed"),
    ],
)
def test_unknown_field_is_unsupported_parameter(client: FlaskClient, model: str, path: str) -> None:
    body = _with(task(model), path, "x")
    error = _one_error(client, [body])
    assert error["code"] == "unsupportedParameter"
    assert error["parameter"] == path
    assert error["taskUUID"] == body["taskUUID"] and error["taskType"] == "imageInference"
    assert model in error["message"]


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("ideogram:1@2", "positivePrompt"),
        ("ideogram:1@2", "width"),
        ("ideogram:1@2", "height"),
        ("ideogram:1@2", "inputs"),
        ("ideogram:1@2", "inputs.referenceImages"),
        ("ideogram:4@2", "height"),
        ("ideogram:4@2", "inputs.referenceImages"),
        ("ideogram:4@remix", "inputs.seedImage"),
        ("ideogram:4@remix", "width"),
        ("ideogram:4@remix", "taskUUID"),
    ],
)
def test_missing_required_field(client: FlaskClient, model: str, path: str) -> None:
    error = _one_error(client, [_without(task(model), path)])
    assert error["code"] == "missingParameter"
    assert error["parameter"] == path


_IDEO = "providerSettings.ideogram"
BAD_VALUES = [
    # each: the model, the field's path, a bad value, the error code it must get
    ("ideogram:1@2", "positivePrompt", "", "invalidPositivePrompt"),
    ("ideogram:1@2", "positivePrompt", "x" * 2001, "invalidPositivePrompt"),
    ("ideogram:1@2", "positivePrompt", 42, "invalidPositivePrompt"),
    ("ideogram:4@remix", "positivePrompt", "x", "invalidPositivePrompt"),
    ("ideogram:4@remix", "positivePrompt", "x" * 2049, "invalidPositivePrompt"),
    ("ideogram:1@2", "negativePrompt", "", "invalidNegativePrompt"),
    ("ideogram:1@2", "numberResults", 0, "invalidNumberResults"),
    ("ideogram:1@2", "numberResults", 21, "invalidNumberResults"),
    ("ideogram:1@2", "numberResults", "2", "invalidNumberResults"),
    ("ideogram:1@2", "numberResults", True, "invalidNumberResults"),
    ("ideogram:1@2", "numberResults", 1.5, "invalidNumberResults"),
    ("ideogram:1@2", "outputType", "url", "invalidOutputType"),
    ("ideogram:1@2", "outputFormat", "GIF", "invalidOutputFormat"),
    ("ideogram:1@2", "outputQuality", 19, "invalidOutputQuality"),
    ("ideogram:1@2", "outputQuality", 100, "invalidOutputQuality"),
    ("ideogram:1@2", "ttl", 59, "invalidTtl"),
    ("ideogram:1@2", "deliveryMethod", "later", "invalidDeliveryMethod"),
    ("ideogram:1@2", "webhookURL", "not a url", "invalidWebhookURL"),
    ("ideogram:1@2", "webhookURL", "ftp://example.com/x", "invalidWebhookURL"),
    ("ideogram:1@2", "uploadEndpoint", "/relative", "invalidUploadEndpoint"),
    ("ideogram:1@2", "includeCost", "yes", "invalidIncludeCost"),
    ("ideogram:1@2", "taskUUID", "6ba7b826-9dad-11d1-80b4-00c04fd430c8", "invalidTaskUUID"),
    ("ideogram:1@2", "taskUUID", "not-a-uuid", "invalidTaskUUID"),
    ("ideogram:1@2", "width", "1024", "invalidWidth"),
    ("ideogram:1@2", "safety", True, "invalidSafety"),
    ("ideogram:1@2", "safety.mode", "full", "invalidParameter"),
    ("ideogram:1@2", "safety.checkContent", "true", "invalidParameter"),
    ("ideogram:1@2", "inputs.referenceImages", [], "invalidParameter"),
    ("ideogram:1@2", "inputs.referenceImages", ["a", "b"], "invalidParameter"),
    ("ideogram:1@2", "inputs.referenceImages", [""], "invalidParameter"),
    ("ideogram:1@2", "inputs.referenceImages", "a", "invalidParameter"),
    ("ideogram:1@2", "providerSettings.ideogram.remixStrength", 0, "invalidParameter"),
    ("ideogram:1@2", "providerSettings.ideogram.remixStrength", 101, "invalidParameter"),
    ("ideogram:1@2", "providerSettings.ideogram.magicPrompt", "MAYBE", "invalidParameter"),
    ("ideogram:1@2", "providerSettings.ideogram.renderingSpeed", "FLASH", "invalidParameter"),
    ("ideogram:1@2", "providerSettings.ideogram.styleType", "PHOTO", "invalidParameter"),
    ("ideogram:1@2", f"{_IDEO}.styleReferenceImages", ["a"] * 5, "invalidParameter"),
    ("ideogram:4@2", "providerSettings.ideogram.styleCode", "abc", "invalidParameter"),
    ("ideogram:4@2", "providerSettings.ideogram.styleCode", "zzzzzzzz", "invalidParameter"),
    ("ideogram:4@2", "providerSettings.ideogram.stylePreset", "NOPE", "invalidParameter"),
    ("ideogram:4@2", "providerSettings.ideogram.styleReferenceImages", [], "invalidParameter"),
    ("ideogram:4@2", f"{_IDEO}.characterReferenceImages", ["a", "b"], "invalidParameter"),
    ("ideogram:4@2", "width", 0, "invalidWidth"),
    ("ideogram:4@2", "height", -5, "invalidHeight"),
    ("ideogram:4@remix", "strength", 1.5, "invalidStrength"),
    ("ideogram:4@remix", "strength", -0.01, "invalidStrength"),
    ("ideogram:4@remix", "strength", 0.123, "invalidStrength"),
    ("ideogram:4@remix", "strength", "0.5", "invalidStrength"),
    ("ideogram:4@remix", "inputs.seedImage", ["a"], "invalidParameter"),
    ("ideogram:4@remix", "inputs.seedImage", "", "invalidParameter"),
    ("ideogram:4@remix", "settings.renderingSpeed", "turbo", "invalidParameter"),
    ("ideogram:4@remix", "settings.copyrightDetection", 1, "invalidParameter"),
    ("ideogram:4@remix", "safety.checkContent", None, "invalidParameter"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "path", "value", "code"), BAD_VALUES)
def test_bad_value_names_the_parameter(
    client: FlaskClient, model: str, path: str, value: Any, code: str
) -> None:
    body = _with(task(model), path, value)
    error = _one_error(client, [body])
    assert error["code"] == code
    assert error["parameter"] == path
    assert path in error["message"]
    assert error["documentation"].startswith("https://runware.ai/docs/models/")
    if path == "taskUUID":
        assert error["taskUUID"] == value  # the task still names itself
    else:
        assert error["taskUUID"] == body["taskUUID"]


def test_enum_errors_list_the_allowed_values(client: FlaskClient) -> None:
    error = _one_error(client, [task(outputType="url")])
    assert error["allowedValues"] == ["URL", "base64Data", "dataURI"]
    preset = task("ideogram:4@2", providerSettings={"ideogram": {"stylePreset": "NOPE"}})
    error = _one_error(client, [preset])
    assert len(error["allowedValues"]) == len(STYLE_PRESETS) == 62
    assert "TRAVEL_POSTER" in error["allowedValues"]


def test_range_errors_spell_out_the_range(client: FlaskClient) -> None:
    error = _one_error(client, [task(numberResults=21)])
    assert "between 1 and 20" in error["message"]
    error = _one_error(client, [task("ideogram:4@remix", positivePrompt="x")])
    assert "between 2 and 2048" in error["message"]


@pytest.mark.parametrize(
    ("model", "width", "height"),
    [
        ("ideogram:1@2", 1000, 1000),
        ("ideogram:1@2", 768, 1024 + 1),
        ("ideogram:4@remix", 1024, 1024),
    ],
)
def test_unlisted_dimensions_are_refused(
    client: FlaskClient, model: str, width: int, height: int
) -> None:
    error = _one_error(client, [task(model, width=width, height=height)])
    assert error["code"] == "unsupportedDimensions"
    assert f"{width}x{height}" in error["message"]
    assert error["allowedValues"]


@pytest.mark.parametrize(
    ("model", "size"),
    [
        ("ideogram:1@2", (1536, 512)),
        ("ideogram:1@2", (720, 1280)),
        ("ideogram:4@2", (1000, 1000)),  # no table documented for 3.0: any positive size
        ("ideogram:4@2", (7, 3)),
        ("ideogram:4@remix", (3328, 1248)),
        ("ideogram:4@remix", (1152, 2944)),
    ],
)
def test_listed_dimensions_are_accepted(
    client: FlaskClient, model: str, size: tuple[int, int]
) -> None:
    answer = client.post("/v1", json=[task(model, width=size[0], height=size[1])], headers=AUTH)
    assert answer.status_code == 200, answer.json


def test_every_documented_option_is_accepted(client: FlaskClient) -> None:
    full_1 = task(
        "ideogram:1@2",
        negativePrompt="blur",
        outputType="URL",
        outputFormat="PNG",
        outputQuality=20,
        deliveryMethod="sync",
        safety={"checkContent": True, "mode": "fast"},
        ttl=60,
        includeCost=False,
        numberResults=2,
        providerSettings={
            "ideogram": {
                "magicPrompt": "OFF",
                "remixStrength": 100,
                "renderingSpeed": "TURBO",
                "styleReferenceImages": ["a", "b", "c", "d"],
                "styleType": "RENDER_3D",
            }
        },
    )
    full_3 = task(
        "ideogram:4@2",
        providerSettings={
            "ideogram": {
                "characterReferenceImages": ["c"],
                "characterReferenceImagesMask": ["m"],
                "styleCode": "0A1b2C3d",
                "stylePreset": "80S_ILLUSTRATION",
                "styleReferenceImages": ["s"],
                "remixStrength": 1,
            }
        },
    )
    full_4 = task(
        "ideogram:4@remix",
        strength=0.57,
        settings={"renderingSpeed": "QUALITY", "copyrightDetection": True},
        safety={"checkContent": False},
        numberResults=20,
        outputType="base64Data",
        outputFormat="WEBP",
        outputQuality=99,
    )
    for body in (
        full_1,
        full_3,
        full_4,
        task("ideogram:4@remix", strength=0),
        task("ideogram:4@remix", strength=1),
    ):
        answer = client.post("/v1", json=[body], headers=AUTH)
        assert answer.status_code == 200, (body, answer.json)


def test_character_masks_must_match_the_images(client: FlaskClient) -> None:
    body = task(
        "ideogram:4@2", providerSettings={"ideogram": {"characterReferenceImagesMask": ["m"]}}
    )
    error = _one_error(client, [body])
    assert error["code"] == "invalidParameter"
    assert error["parameter"] == "providerSettings.ideogram.characterReferenceImagesMask"


def test_unknown_and_missing_model(client: FlaskClient) -> None:
    error = _one_error(client, [task() | {"model": "ideogram:9@9"}])
    assert error["code"] == "invalidModel" and error["parameter"] == "model"
    assert set(error["allowedValues"]) == {"ideogram:1@2", "ideogram:4@2", "ideogram:4@remix"}
    error = _one_error(client, [_without(task(), "model")])
    assert error["code"] == "missingParameter" and error["parameter"] == "model"


def test_reused_task_uuid_conflicts(client: FlaskClient) -> None:
    body = task()
    assert client.post("/v1", json=[body], headers=AUTH).status_code == 200
    error = _one_error(client, [body])
    assert error["code"] == "conflictTaskUUID"
    assert error["taskUUID"] == body["taskUUID"] and error["parameter"] == "taskUUID"
    # Even with different parameters, and even as an async task.
    error = _one_error(client, [dict(body, positivePrompt="other", deliveryMethod="async")])
    assert error["code"] == "conflictTaskUUID"
    stats = simulator_of(client).stats.snapshot()
    assert stats["tasks"][body["taskUUID"]] == {
        "attempts": 3,
        "accepted": 1,
        "webhooks_delivered": 0,
    }
    assert stats["conflicts"] == 2


def test_duplicate_task_uuid_within_one_batch(client: FlaskClient) -> None:
    body = task()
    answer = client.post("/v1", json=[body, body], headers=AUTH)
    assert answer.status_code == 200 and answer.json is not None
    assert len(answer.json["data"]) == 1
    assert [e["code"] for e in answer.json["errors"]] == ["conflictTaskUUID"]


def test_mixed_batch_is_200_with_data_and_errors(client: FlaskClient) -> None:
    good, bad = task(), task(numberResults=0)
    answer = client.post("/v1", json=[good, bad, get_response(str(uuid.uuid4()))], headers=AUTH)
    assert answer.status_code == 200 and answer.json is not None
    assert [item["taskUUID"] for item in answer.json["data"]] == [good["taskUUID"]]
    codes = [(e["code"], e["taskUUID"]) for e in answer.json["errors"]]
    assert codes[0] == ("invalidNumberResults", bad["taskUUID"])
    assert codes[1][0] == "taskFailedOrNotFound"


def test_all_invalid_batch_is_400_with_one_error_per_task(client: FlaskClient) -> None:
    bodies = [task(numberResults=0), task(foo=1), _without(task(), "positivePrompt")]
    answer = client.post("/v1", json=bodies, headers=AUTH)
    assert answer.status_code == 400 and answer.json is not None
    assert [e["code"] for e in answer.json["errors"]] == [
        "invalidNumberResults",
        "unsupportedParameter",
        "missingParameter",
    ]


@pytest.mark.parametrize("body", [{"taskType": "imageInference"}, [], "[]x", None, 3])
def test_body_must_be_a_non_empty_array(client: FlaskClient, body: Any) -> None:
    if isinstance(body, str):
        answer = client.post("/v1", data=body, headers=AUTH, content_type="application/json")
    else:
        answer = client.post("/v1", json=body, headers=AUTH)
    assert answer.status_code == 400 and answer.json is not None
    assert answer.json["errors"][0]["code"] == "invalidRequest"


def test_non_object_task_and_unknown_task_type(client: FlaskClient) -> None:
    answer = client.post(
        "/v1",
        json=["x", {"taskType": "videoInference", "taskUUID": str(uuid.uuid4())}],
        headers=AUTH,
    )
    assert answer.status_code == 400 and answer.json is not None
    assert [e["code"] for e in answer.json["errors"]] == ["invalidRequest", "invalidTaskType"]


def test_get_response_validation(client: FlaskClient) -> None:
    error = _one_error(client, [{"taskType": "getResponse"}])
    assert error["code"] == "missingParameter" and error["parameter"] == "taskUUID"
    error = _one_error(client, [{"taskType": "getResponse", "taskUUID": "nope"}])
    assert error["code"] == "invalidTaskUUID"
    error = _one_error(client, [get_response(str(uuid.uuid4())) | {"extra": 1}])
    assert error["code"] == "unsupportedParameter"
    error = _one_error(client, [get_response(str(uuid.uuid4()))])
    assert error["code"] == "taskFailedOrNotFound"
