"""The simulated "Remix with Ideogram 3.0" endpoint: key, validation (400 naming the field),
generated and served images, unsafe results, faults, lost answers and the per-provider stats."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.test import TestResponse

from simulator import assumptions
from simulator.ideogram import PATH
from tests.support.images import image_bytes, jpeg_bytes, png_bytes, webp_bytes
from tests.support.simulator import MakeClient

KEY = {"Api-Key": "test-key"}


def post(
    client: FlaskClient,
    fields: dict[str, Any] | None = None,
    files: dict[str, list[bytes]] | None = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    data: dict[str, Any] = {"prompt": "A seaside ticket booth"}
    data.update(fields or {})
    data = {k: v for k, v in data.items() if v is not None}
    for name, parts in ({"image": [png_bytes()]} | (files or {})).items():
        data[name] = [(io.BytesIO(part), f"{name}.bin") for part in parts]
    return client.post(
        PATH, data=data, headers=KEY if headers is None else headers,
        content_type="multipart/form-data",
    )  # fmt: skip


def providers(client: FlaskClient) -> dict[str, Any]:
    return dict(client.get("/_control/stats").json["providers"])


def test_a_remix_makes_num_images_served_images(client: FlaskClient) -> None:
    answer = post(client, {"num_images": "2", "aspect_ratio": "9x16", "seed": "7"})
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["created"].endswith("Z") and len(body["data"]) == 2
    for index, item in enumerate(body["data"]):
        assert item["seed"] == 7 + index and item["resolution"] == "736x1312"
        assert item["is_image_safe"] is True and item["style_type"] == "GENERAL"
        assert item["prompt"] == "A seaside ticket booth"
        served = client.get(urlsplit(item["url"]).path)
        assert served.status_code == 200 and served.mimetype == "image/png"
        picture = Image.open(io.BytesIO(served.data))
        assert picture.size[0] / picture.size[1] == pytest.approx(736 / 1312, rel=0.03)
    assert providers(client)["ideogram"] == {
        "calls": 1, "charged": 1, "images": 2, "unsafe": 0, "cost": "0.1200"
    }  # fmt: skip


def test_the_price_follows_the_rendering_speed(client: FlaskClient) -> None:
    assert post(client, {"rendering_speed": "FLASH", "num_images": "4"}).status_code == 200
    assert providers(client)["ideogram"]["cost"] == "0.0600"


@pytest.mark.parametrize(
    ("headers", "status"), [({}, 401), ({"Api-Key": ""}, 401), ({"Api-Key": "other"}, 403)]
)
def test_the_key_is_checked_first(
    make_client: MakeClient, headers: dict[str, str], status: int
) -> None:
    client = make_client(api_key="test-key")
    answer = post(client, {"prompt": ""}, headers=headers)
    assert answer.status_code == status and set(answer.json) == {"error"}
    assert providers(client)["ideogram"]["charged"] == 0


GIF = image_bytes("GIF")
BIG = png_bytes() + b"\0" * assumptions.IDEOGRAM_IMAGE_MAX_BYTES


@pytest.mark.parametrize(
    ("fields", "files", "words"),
    [
        ({"prompt": None}, None, "prompt is required"),
        ({"colour": "red"}, None, "Unknown field 'colour'"),
        ({}, {"image": []}, "image is required"),
        ({}, {"image": [GIF]}, "only JPEG, WebP and PNG"),
        ({}, {"image": [BIG]}, "maximum size of 10MB"),
        ({"image_weight": "0"}, None, "image_weight must be >= 1 and <= 100"),
        ({"seed": "2147483648"}, None, "seed must be >= 0"),
        ({"num_images": "9"}, None, "num_images must be >= 1 and <= 8"),
        ({"num_images": "two"}, None, "num_images must be an integer"),
        ({"resolution": "1000x1000"}, None, "resolution must be one of"),
        ({"resolution": "1024x1024", "aspect_ratio": "1x1"}, None, "in conjunction with"),
        ({"rendering_speed": "FAST"}, None, "rendering_speed must be one of FLASH"),
        ({"magic_prompt": "YES"}, None, "magic_prompt must be one of"),
        ({"style_type": "ANIME"}, None, "style_type must be one of"),
        ({"style_preset": "NOPE"}, None, "style_preset must be one of"),
        ({"color_palette": '{"name": "RAINBOW"}'}, None, "color_palette.name"),
        ({"color_palette": '{"name": "EMBER", "members": []}'}, None, "EITHER name OR"),
        ({"color_palette": '{"members": [{"color_hex": "red"}]}'}, None, "color_hex"),
        (
            {"color_palette": '{"members": [{"color_hex": "#aabbcc", "color_weight": 2}]}'},
            None,
            "color_weight",
        ),
        ({"style_codes": "XYZ"}, None, "8 character hexadecimal"),
        ({"style_codes": "1A2B3C4D", "style_type": "GENERAL"}, None, "in conjunction"),
        ({"style_codes": "1A2B3C4D"}, {"style_reference_images": [png_bytes()]}, "conjunction"),
        (
            {},
            {"style_reference_images": [BIG[: len(BIG) // 2 + 8], BIG[: len(BIG) // 2 + 8]]},
            "total at most 10MB",
        ),
        ({}, {"character_reference_images": [png_bytes(), png_bytes()]}, "only 1 image"),
        (
            {},
            {
                "character_reference_images": [png_bytes()],
                "character_reference_images_mask": [png_bytes(), png_bytes()],
            },
            "one mask per",
        ),
    ],
)
def test_a_bad_form_is_400_naming_the_field(
    client: FlaskClient, fields: dict[str, Any], files: dict[str, list[bytes]] | None, words: str
) -> None:
    answer = post(client, fields, files)
    assert answer.status_code == 400
    assert words in answer.json["error"]
    assert providers(client)["ideogram"] == {
        "calls": 1, "charged": 0, "images": 0, "unsafe": 0, "cost": "0.0000"
    }  # fmt: skip


def test_every_documented_option_is_accepted(client: FlaskClient) -> None:
    answer = post(
        client,
        {
            "image_weight": "100",
            "seed": "2147483647",
            "resolution": "1536x640",
            "rendering_speed": "QUALITY",
            "magic_prompt": "AUTO",
            "negative_prompt": "text",
            "num_images": "8",
            "color_palette": json.dumps({"members": [{"color_hex": "#aabbcc"}]}),
            "style_type": "FICTION",
            "style_preset": "BRIGHT_ART",
        },
        {
            "image": [jpeg_bytes()],
            "style_reference_images": [webp_bytes(), png_bytes()],
            "character_reference_images": [png_bytes()],
            "character_reference_images_mask": [png_bytes()],
        },
    )
    assert answer.status_code == 200, answer.json
    assert [item["seed"] for item in answer.json["data"]][:2] == [2147483647, 0]
    assert post(client, {"style_codes": "1A2B3C4D"}).json["data"][0]["style_type"] is None


@pytest.mark.parametrize(
    ("knob", "status", "kind"),
    [
        ("ideogram_429_rate", 429, "ideogram_429"),
        ("ideogram_5xx_rate", 500, "ideogram_5xx"),
        ("ideogram_422_rate", 422, "ideogram_422"),
    ],
)
def test_an_injected_fault_answers_its_status_and_charges_nothing(
    make_client: MakeClient, knob: str, status: int, kind: str
) -> None:
    client = make_client(**{knob: 1.0, "retry_after_s": 4})
    answer = post(client)
    assert answer.status_code == status and set(answer.json) == {"error"}
    assert answer.headers.get("Retry-After") == ("4" if status == 429 else None)
    if status == 422:
        assert answer.json["error"] == "Prompt or provided image failed safety check."
    stats = client.get("/_control/stats").json
    assert stats["faults"][kind] == 1 and stats["providers"]["ideogram"]["charged"] == 0


def test_unsafe_images_have_no_url_and_are_charged(make_client: MakeClient) -> None:
    client = make_client(ideogram_unsafe_rate=1.0)
    (item,) = post(client).json["data"]
    assert item["is_image_safe"] is False and item["url"] is None
    assert providers(client)["ideogram"]["unsafe"] == 1
    assert providers(client)["ideogram"]["charged"] == 1


def test_a_lost_answer_is_cut_short_after_charging(make_client: MakeClient) -> None:
    client = make_client(ideogram_lost_answer_rate=1.0)
    answer = post(client)
    assert answer.headers["Connection"] == "close"
    assert len(answer.get_data()) < int(answer.headers["Content-Length"])
    stats = client.get("/_control/stats").json
    assert stats["faults"]["ideogram_lost_answer"] == 1
    assert stats["providers"]["ideogram"]["charged"] == 1
    assert stats["ideogram_prompts"] == {"A seaside ticket booth": {"calls": 1, "charged": 1}}


def test_the_fault_rates_must_fit_in_one_draw(client: FlaskClient) -> None:
    answer = client.put(
        "/_control/faults", json={"ideogram_429_rate": 0.6, "ideogram_lost_answer_rate": 0.6}
    )
    assert answer.status_code == 400


def test_runware_calls_are_counted_per_provider_too(client: FlaskClient) -> None:
    assert providers(client) == {
        "runware": {"calls": 0, "charged": 0},
        "ideogram": {"calls": 0, "charged": 0, "images": 0, "unsafe": 0, "cost": "0.0000"},
    }
