"""``parse_request``: every constrained parameter refused with its field, value and what is allowed;
every documented value accepted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from remixq.errors import FieldError, InvalidInput
from remixq.providers.runware import MODEL_IDS, MODELS, parse_request
from remixq.providers.runware.schemas import (
    IDEOGRAM_1_SIZES,
    IDEOGRAM_4_SIZES,
    IMAGE_REFERENCE_TEXT,
)
from tests.support.runware_requests import (
    BASES,
    DELETE,
    IMAGE_URL,
    IMAGE_UUID,
    JPEG_B64,
    PNG_B64,
    TASK_UUID,
    V1_OK,
    changed,
)


def refusals(data: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(InvalidInput) as caught:
        parse_request(data)
    return caught.value.errors


@pytest.mark.parametrize("name", list(BASES))
def test_the_base_requests_are_valid(name: str) -> None:
    parse_request(BASES[name])


# --- one bad value of every constrained parameter ---------------------------------------------

ALL = ("v1", "v3", "v4")
V13 = ("v1", "v3")
REFS_5 = [IMAGE_URL] * 5

# (models, changes, field, value, words the allowed text must contain)
CASES: list[tuple[tuple[str, ...], dict[str, Any], str, Any, str]] = [
    # platform options
    (ALL, {"taskType": "getResponse"}, "taskType", "getResponse", "imageInference"),
    (ALL, {"taskUUID": "not-a-uuid"}, "taskUUID", "not-a-uuid", "UUID v4"),
    (
        ALL,
        {"taskUUID": "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},  # a v1 UUID
        "taskUUID",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "UUID v4",
    ),
    (ALL, {"outputType": "url"}, "outputType", "url", "one of URL, base64Data, dataURI"),
    (ALL, {"outputFormat": "GIF"}, "outputFormat", "GIF", "one of JPG, PNG, WEBP"),
    (ALL, {"outputQuality": 19}, "outputQuality", 19, "an integer from 20 to 99"),
    (ALL, {"outputQuality": 100}, "outputQuality", 100, "an integer from 20 to 99"),
    (ALL, {"outputQuality": "95"}, "outputQuality", "95", "an integer from 20 to 99"),
    (ALL, {"outputQuality": 95.0}, "outputQuality", 95.0, "an integer from 20 to 99"),
    (ALL, {"uploadEndpoint": "ftp://x.test/a"}, "uploadEndpoint", "ftp://x.test/a", "http(s)"),
    (ALL, {"uploadEndpoint": "bucket/key"}, "uploadEndpoint", "bucket/key", "http(s) URL"),
    (ALL, {"safety.checkContent": "true"}, "safety.checkContent", "true", "true or false"),
    (ALL, {"safety.checkContent": 1}, "safety.checkContent", 1, "true or false"),
    (V13, {"safety.mode": "full"}, "safety.mode", "full", "one of none, fast"),
    (("v4",), {"safety.mode": "fast"}, "safety.mode", "fast", "allowed here: checkContent"),
    (ALL, {"ttl": 59}, "ttl", 59, "at least 60"),
    (ALL, {"ttl": True}, "ttl", True, "at least 60"),
    (
        ALL,
        {"ttl": 600, "outputType": "base64Data"},
        "ttl",
        600,
        "only allowed when outputType is URL",
    ),
    (ALL, {"numberResults": 0}, "numberResults", 0, "an integer from 1 to 20"),
    (ALL, {"numberResults": 21}, "numberResults", 21, "an integer from 1 to 20"),
    (ALL, {"numberResults": True}, "numberResults", True, "an integer from 1 to 20"),
    # fields remixq owns
    (ALL, {"webhookURL": "https://x.test/h"}, "webhookURL", "https://x.test/h", "set by remixq"),
    (ALL, {"deliveryMethod": "sync"}, "deliveryMethod", "sync", "set by remixq; remove it"),
    (ALL, {"includeCost": False}, "includeCost", False, "set by remixq; remove it"),
    # prompts
    (V13, {"positivePrompt": ""}, "positivePrompt", "", "a string of 1 to 2000 characters"),
    (V13, {"positivePrompt": "x" * 2001}, "positivePrompt", "x" * 2001, "1 to 2000 characters"),
    (V13, {"positivePrompt": 42}, "positivePrompt", 42, "a string of 1 to 2000 characters"),
    (V13, {"positivePrompt": DELETE}, "positivePrompt", None, "required: a string of 1 to 2000"),
    (V13, {"negativePrompt": ""}, "negativePrompt", "", "a string of 1 to 2000 characters"),
    (V13, {"negativePrompt": None}, "negativePrompt", None, "a string of 1 to 2000 characters"),
    (("v4",), {"positivePrompt": "x"}, "positivePrompt", "x", "a string of 2 to 2048 characters"),
    (("v4",), {"positivePrompt": "x" * 2049}, "positivePrompt", "x" * 2049, "2 to 2048"),
    (("v4",), {"negativePrompt": "blurry"}, "negativePrompt", "blurry", "unknown field"),
    # dimensions
    (("v1",), {"width": 1000, "height": 1000}, "width", "1000x1000", "documented sizes 768x1232"),
    (("v1",), {"width": 768, "height": 1024.0}, "height", 1024.0, "a positive integer"),
    (("v3",), {"width": 0}, "width", 0, "a positive integer"),
    (("v3",), {"height": "768"}, "height", "768", "a positive integer"),
    (("v4",), {"width": 1024, "height": 1024}, "width", "1024x1024", "documented sizes 2048x2048"),
    (ALL, {"height": DELETE}, "height", None, "required together with width"),
    (ALL, {"width": DELETE}, "width", None, "required together with height"),
    # inputs
    (
        V13,
        {"inputs": DELETE},
        "inputs",
        None,
        "required: an object with the fields referenceImages",
    ),
    (V13, {"inputs": "x"}, "inputs", "x", "an object with the fields referenceImages"),
    (V13, {"inputs.referenceImages": []}, "inputs.referenceImages", [], "exactly 1 image"),
    (
        V13,
        {"inputs.referenceImages": [IMAGE_URL, IMAGE_UUID]},
        "inputs.referenceImages",
        [IMAGE_URL, IMAGE_UUID],
        "a list of exactly 1 image reference",
    ),
    (
        V13,
        {"inputs.referenceImages": IMAGE_URL},
        "inputs.referenceImages",
        IMAGE_URL,
        "a list of exactly 1 image reference",
    ),
    (
        V13,
        {"inputs.referenceImages": ["a photo of a cat"]},
        "inputs.referenceImages[0]",
        "a photo of a cat",
        IMAGE_REFERENCE_TEXT,
    ),
    (("v4",), {"inputs.seedImage": "cat.jpg"}, "inputs.seedImage", "cat.jpg", "an image reference"),
    (("v4",), {"inputs.seedImage": [IMAGE_URL]}, "inputs.seedImage", [IMAGE_URL], "a UUID"),
    (("v4",), {"inputs.seedImage": DELETE}, "inputs.seedImage", None, "required: an image"),
    # the providerSettings.ideogram fields of 1.0 and 3.0
    (
        V13,
        {"providerSettings.ideogram.magicPrompt": "on"},
        "providerSettings.ideogram.magicPrompt",
        "on",
        "one of AUTO, ON, OFF",
    ),
    (
        V13,
        {"providerSettings.ideogram.remixStrength": 0},
        "providerSettings.ideogram.remixStrength",
        0,
        "an integer from 1 to 100",
    ),
    (
        V13,
        {"providerSettings.ideogram.remixStrength": 101},
        "providerSettings.ideogram.remixStrength",
        101,
        "an integer from 1 to 100",
    ),
    (
        V13,
        {"providerSettings.ideogram.remixStrength": 50.0},
        "providerSettings.ideogram.remixStrength",
        50.0,
        "an integer from 1 to 100",
    ),
    (
        V13,
        {"providerSettings.ideogram.remixStrength": "50"},
        "providerSettings.ideogram.remixStrength",
        "50",
        "an integer from 1 to 100",
    ),
    (
        V13,
        {"providerSettings.ideogram.renderingSpeed": "FLASH"},
        "providerSettings.ideogram.renderingSpeed",
        "FLASH",
        "one of TURBO, DEFAULT, QUALITY",
    ),
    (
        V13,
        {"providerSettings.ideogram.styleType": "PHOTO"},
        "providerSettings.ideogram.styleType",
        "PHOTO",
        "one of AUTO, GENERAL, REALISTIC, DESIGN, RENDER_3D, ANIME, FICTION",
    ),
    (
        V13,
        {"providerSettings.ideogram.styleReferenceImages": []},
        "providerSettings.ideogram.styleReferenceImages",
        [],
        "a list of 1 to 4 image references",
    ),
    (
        V13,
        {"providerSettings.ideogram.styleReferenceImages": REFS_5},
        "providerSettings.ideogram.styleReferenceImages",
        REFS_5,
        "a list of 1 to 4 image references",
    ),
    (
        V13,
        {"providerSettings.ideogram.styleReferenceImages": [IMAGE_URL, "nope"]},
        "providerSettings.ideogram.styleReferenceImages[1]",
        "nope",
        IMAGE_REFERENCE_TEXT,
    ),
    (V13, {"providerSettings": {}}, "providerSettings.ideogram", None, "required: an object"),
    (
        ("v1",),
        {"providerSettings.ideogram.stylePreset": "BAUHAUS"},
        "providerSettings.ideogram.stylePreset",
        "BAUHAUS",
        "unknown field for ideogram:1@2 (`stylePreset` is only used by ideogram:4@2)",
    ),
    # 3.0 only
    (
        ("v3",),
        {"providerSettings.ideogram.styleCode": "XYZ12345"},
        "providerSettings.ideogram.styleCode",
        "XYZ12345",
        "exactly 8 hexadecimal characters",
    ),
    (
        ("v3",),
        {"providerSettings.ideogram.styleCode": "1A2B3C4"},
        "providerSettings.ideogram.styleCode",
        "1A2B3C4",
        "exactly 8 hexadecimal characters",
    ),
    (
        ("v3",),
        {"providerSettings.ideogram.stylePreset": "CINEMATIC"},
        "providerSettings.ideogram.stylePreset",
        "CINEMATIC",
        "one of the 62 Ideogram style presets: 80S_ILLUSTRATION",
    ),
    (
        ("v3",),
        {"providerSettings.ideogram.characterReferenceImages": [IMAGE_URL, IMAGE_UUID]},
        "providerSettings.ideogram.characterReferenceImages",
        [IMAGE_URL, IMAGE_UUID],
        "a list of exactly 1 image reference",
    ),
    (
        ("v3",),
        {"providerSettings.ideogram.characterReferenceImages": ["face"]},
        "providerSettings.ideogram.characterReferenceImages[0]",
        "face",
        IMAGE_REFERENCE_TEXT,
    ),
    (
        ("v3",),
        {"providerSettings.ideogram.characterReferenceImagesMask": [IMAGE_URL]},
        "providerSettings.ideogram.characterReferenceImagesMask",
        [IMAGE_URL],
        "only together with providerSettings.ideogram.characterReferenceImages",
    ),
    (
        ("v3",),
        {
            "providerSettings.ideogram.characterReferenceImages": [IMAGE_URL],
            "providerSettings.ideogram.characterReferenceImagesMask": [IMAGE_URL, IMAGE_UUID],
        },
        "providerSettings.ideogram.characterReferenceImagesMask",
        [IMAGE_URL, IMAGE_UUID],
        ("exactly 1 mask image reference (UUID, http(s) URL, data URI or base64), one per "
        "characterReferenceImages item"),
    ),
    (
        ("v3",),
        {
            "providerSettings.ideogram.styleCode": "1A2B3C4D",
            "providerSettings.ideogram.styleReferenceImages": [IMAGE_URL],
        },
        "providerSettings.ideogram.styleCode",
        "1A2B3C4D",
        "cannot be combined with styleReferenceImages",
    ),
    (
        ("v3",),
        {
            "providerSettings.ideogram.styleCode": "1A2B3C4D",
            "providerSettings.ideogram.styleType": "DESIGN",
        },
        "providerSettings.ideogram.styleCode",
        "1A2B3C4D",
        "cannot be combined with styleType",
    ),
    # 4.0 only
    (("v4",), {"strength": 0.125}, "strength", 0.125, "a number from 0 to 1 in steps of 0.01"),
    (("v4",), {"strength": 1.01}, "strength", 1.01, "a number from 0 to 1 in steps of 0.01"),
    (("v4",), {"strength": -0.1}, "strength", -0.1, "a number from 0 to 1 in steps of 0.01"),
    (("v4",), {"strength": True}, "strength", True, "a number from 0 to 1"),
    (("v4",), {"strength": "0.5"}, "strength", "0.5", "a number from 0 to 1"),
    (
        ("v4",),
        {"settings.renderingSpeed": "FAST"},
        "settings.renderingSpeed",
        "FAST",
        "one of TURBO, DEFAULT, QUALITY",
    ),
    (
        ("v4",),
        {"settings.copyrightDetection": "yes"},
        "settings.copyrightDetection",
        "yes",
        "true or false",
    ),
    # unknown and misplaced fields
    (ALL, {"seed": 42}, "seed", 42, "unknown field; allowed here: model, taskType, taskUUID"),
    (ALL, {"positive_prompt": "x"}, "positive_prompt", "x", "unknown field; allowed here:"),
    (V13, {"remixStrength": 70}, "remixStrength", 70, "belongs in providerSettings.ideogram"),
    (V13, {"magicPrompt": "ON"}, "magicPrompt", "ON", "belongs in providerSettings.ideogram"),
    (V13, {"referenceImages": [IMAGE_URL]}, "referenceImages", [IMAGE_URL], "belongs in inputs"),
    (
        V13,
        {"settings": {"renderingSpeed": "TURBO"}},
        "settings",
        {"renderingSpeed": "TURBO"},
        "`settings` is only used by ideogram:4@remix",
    ),
    (V13, {"strength": 0.5}, "strength", 0.5, "use providerSettings.ideogram.remixStrength"),
    (V13, {"inputs.seedImage": IMAGE_URL}, "inputs.seedImage", IMAGE_URL, "use inputs.reference"),
    (
        ("v4",),
        {"inputs.referenceImages": [IMAGE_URL]},
        "inputs.referenceImages",
        [IMAGE_URL],
        "use inputs.seedImage for ideogram:4@remix",
    ),
    (
        ("v4",),
        {"providerSettings": {"ideogram": {"renderingSpeed": "TURBO"}}},
        "providerSettings",
        {"ideogram": {"renderingSpeed": "TURBO"}},
        "takes no providerSettings; renderingSpeed and copyrightDetection belong in settings",
    ),
    (("v4",), {"renderingSpeed": "TURBO"}, "renderingSpeed", "TURBO", "belongs in settings"),
    (("v4",), {"remixStrength": 50}, "remixStrength", 50, "use strength"),
    (("v4",), {"seedImage": IMAGE_URL}, "seedImage", IMAGE_URL, "belongs in inputs"),
    # the model itself
    (ALL, {"model": "ideogram:2@1"}, "model", "ideogram:2@1", ", ".join(MODEL_IDS)),
    (ALL, {"model": DELETE}, "model", None, "required: one of ideogram:1@2"),
]


def _case_params() -> list[Any]:
    params = []
    for models, changes, field, value, allowed in CASES:
        for name in models:
            label = ",".join(f"{k}={str(v)[:20]}" for k, v in changes.items())
            params.append(pytest.param(name, changes, field, value, allowed, id=f"{name}:{label}"))
    return params


@pytest.mark.parametrize(("base", "changes", "field", "value", "allowed"), _case_params())
def test_bad_value_is_refused_naming_field_value_and_what_is_allowed(
    base: str, changes: dict[str, Any], field: str, value: Any, allowed: str
) -> None:
    errors = refusals(changed(BASES[base], changes))

    matching = [e for e in errors if e.field == field]
    assert matching, f"no error for {field}: {[str(e) for e in errors]}"
    error = matching[0]
    assert error.value == value
    assert type(error.value) is type(value)
    assert allowed in error.allowed
    assert "Input should" not in error.allowed  # pydantic's own words never leak


def test_every_problem_is_reported_at_once() -> None:
    data = changed(
        V1_OK,
        {
            "outputQuality": 5,
            "webhookURL": "https://x.test",
            "height": DELETE,
            "providerSettings.ideogram.remixStrength": 500,
            "inputs.referenceImages": ["nope"],
            "strength": 0.5,
        },
    )
    fields = sorted(e.field for e in refusals(data))

    assert fields == [
        "height",
        "inputs.referenceImages[0]",
        "outputQuality",
        "providerSettings.ideogram.remixStrength",
        "strength",
        "webhookURL",
    ]


def test_refusal_serialises_for_an_http_answer() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_request(changed(V1_OK, {"width": 1000, "height": 1000}))

    body = caught.value.as_dict()
    assert json.loads(json.dumps(body)) == body
    assert body["errors"][0]["field"] == "width"


@pytest.mark.parametrize("data", [None, [], "ideogram:1@2", 42])
def test_a_request_must_be_an_object(data: Any) -> None:
    (error,) = refusals(data)
    assert (error.field, error.allowed) == ("request", "a JSON object")


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, info in model.model_fields.items():
        wire = info.alias or name
        path = f"{prefix}.{wire}" if prefix else wire
        candidates = (info.annotation, *getattr(info.annotation, "__args__", ()))
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        paths += _leaf_paths(nested[0], path) if nested else [path]
    return paths


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_every_field_says_what_it_allows(model_id: str) -> None:
    base = next(b for b in BASES.values() if b["model"] == model_id)
    for path in _leaf_paths(MODELS[model_id]):
        if path == "model":
            continue
        errors = refusals(changed(base, {path: {"wrong": "type"}}))
        (error,) = [e for e in errors if e.field == path]
        assert error.allowed and "see the model page" not in error.allowed, path


# --- accepted values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "changes"),
    [("v1", {"width": w, "height": h}) for w, h in IDEOGRAM_1_SIZES]
    + [("v4", {"width": w, "height": h}) for w, h in IDEOGRAM_4_SIZES]
    + [
        ("v3", {"width": 1, "height": 4096}),
        ("v4", {"strength": 0}),
        ("v4", {"strength": 1}),
        ("v4", {"strength": 0.29}),
        ("v4", {"strength": 0.57}),
        ("v4", {"safety": {"checkContent": False}}),
        ("v1", {"safety": {"checkContent": True, "mode": "fast"}}),
        ("v1", {"ttl": 60, "outputType": "URL"}),
        ("v1", {"ttl": 60}),
        ("v1", {"taskType": "imageInference", "taskUUID": TASK_UUID.upper()}),
        ("v1", {"providerSettings.ideogram.styleReferenceImages": [IMAGE_URL] * 4}),
        ("v3", {"providerSettings.ideogram.styleCode": "1a2B3c4D"}),
        ("v3", {"providerSettings.ideogram.stylePreset": "80S_ILLUSTRATION"}),
        (
            "v3",
            {
                "providerSettings.ideogram.characterReferenceImages": [IMAGE_UUID],
                "providerSettings.ideogram.characterReferenceImagesMask": [PNG_B64],
            },
        ),
        (
            "v3",
            {
                "providerSettings.ideogram.styleCode": "1A2B3C4D",
                "providerSettings.ideogram.stylePreset": "BAUHAUS",
            },
        ),
        ("v1", {"inputs.referenceImages": [f"data:image/png;base64,{PNG_B64}"]}),
        ("v4", {"inputs.seedImage": JPEG_B64}),
    ],
)
def test_documented_values_are_accepted(base: str, changes: dict[str, Any]) -> None:
    parse_request(changed(BASES[base], changes))
