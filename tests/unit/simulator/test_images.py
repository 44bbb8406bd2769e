"""Served images, output types, costs by rendering speed, 4.0 extras, URL lifetime."""

from __future__ import annotations

import io
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from PIL import Image

from simulator.images import ImageSpec, render, scaled_size
from tests.support.simulator import AUTH, MakeClient, simulator_of, task


def _item(client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1", json=[body], headers=AUTH)
    assert answer.status_code == 200, answer.json
    (item,) = answer.json["data"]
    assert isinstance(item, dict)
    return item


@pytest.mark.parametrize(
    ("model", "fmt", "ext", "size"),
    [
        ("ideogram:1@2", "PNG", "png", (1536, 512)),
        ("ideogram:4@2", "WEBP", "webp", (768, 1344)),
        ("ideogram:4@remix", "JPG", "jpg", (1296, 3168)),
    ],
)
def test_url_serves_the_requested_format_and_aspect(
    client: FlaskClient, model: str, fmt: str, ext: str, size: tuple[int, int]
) -> None:
    item = _item(client, task(model, outputFormat=fmt, width=size[0], height=size[1]))
    path = urlsplit(item["imageURL"]).path
    assert path == f"/images/{item['imageUUID']}.{ext}"
    served = client.get(path)
    assert served.status_code == 200
    picture = Image.open(io.BytesIO(served.data))
    assert picture.format == {"JPG": "JPEG"}.get(fmt, fmt)
    assert max(picture.size) == 256
    assert picture.size[0] / picture.size[1] == pytest.approx(size[0] / size[1], rel=0.03)
    # Same bytes every time: drawn from the parameters, not stored.
    assert client.get(path).data == served.data
    assert client.get(path.replace(f".{ext}", ".gif")).status_code == 404
    assert client.get("/images/00000000-0000-4000-8000-000000000000.jpg").status_code == 404


def test_public_url_setting(make_client: MakeClient) -> None:
    client = make_client(public_url="https://sim.example:9000/")
    assert _item(client, task())["imageURL"].startswith("https://sim.example:9000/images/")


def test_ttl_expires_the_url(client: FlaskClient) -> None:
    item = _item(client, task(ttl=60))
    store = simulator_of(client).store
    assert client.get(urlsplit(item["imageURL"]).path).status_code == 200
    assert store.image(item["imageUUID"], now=time.monotonic() + 59) is not None
    assert store.image(item["imageUUID"], now=time.monotonic() + 61) is None


@pytest.mark.parametrize(
    ("body", "cost"),
    [
        (task("ideogram:1@2", includeCost=True), 0.06),
        (
            task(
                "ideogram:1@2",
                includeCost=True,
                providerSettings={"ideogram": {"renderingSpeed": "TURBO"}},
            ),
            0.03,
        ),
        (
            task(
                "ideogram:4@2",
                includeCost=True,
                providerSettings={"ideogram": {"renderingSpeed": "QUALITY"}},
            ),
            0.09,
        ),
        (task("ideogram:4@remix", includeCost=True, settings={"renderingSpeed": "QUALITY"}), 0.09),
    ],
)
def test_cost_by_rendering_speed(client: FlaskClient, body: dict[str, Any], cost: float) -> None:
    assert _item(client, body)["cost"] == cost


def test_cost_has_at_most_four_decimals(make_client: MakeClient) -> None:
    client = make_client(prices={"ideogram:1@2": {"DEFAULT": "0.123456"}})
    item = _item(client, task(includeCost=True))
    assert item["cost"] == 0.1235
    assert simulator_of(client).stats.snapshot()["cost_total"] == "0.1235"


def test_structured_prompt_only_for_4_0(client: FlaskClient) -> None:
    item = _item(
        client, task("ideogram:4@remix", positivePrompt="A fox, snow, dusk light", strength=0.4)
    )
    assert item["structuredPrompt"]["summary"] == "A fox"
    assert item["structuredPrompt"]["elements"] == ["snow", "dusk light"]
    assert item["structuredPrompt"]["strength"] == 0.4
    assert "structuredPrompt" not in _item(client, task("ideogram:4@2"))


def test_each_result_has_its_own_seed_and_uuid(client: FlaskClient) -> None:
    answer = client.post("/v1", json=[task(numberResults=6)], headers=AUTH).json
    assert len({item["imageUUID"] for item in answer["data"]}) == 6
    assert all(0 <= item["seed"] <= 2**31 - 1 for item in answer["data"])


def test_render_is_small_and_deterministic() -> None:
    spec = ImageSpec("a prompt", 42, 2048, 2048, "PNG", 95)
    assert render(spec, 256) == render(ImageSpec("a prompt", 42, 2048, 2048, "PNG", 95), 256)
    assert render(spec, 256) != render(ImageSpec("a prompt", 43, 2048, 2048, "PNG", 95), 256)
    assert scaled_size(1536, 512, 256) == (256, 85)
    assert scaled_size(100, 50, 256) == (100, 50)


def test_a_link_without_ttl_lives_for_the_knobs_lifetime(make_client: MakeClient) -> None:
    client = make_client(image_ttl_s=30)
    item = _item(client, task())
    store = simulator_of(client).store
    assert store.image(item["imageUUID"], now=time.monotonic() + 29) is not None
    assert store.image(item["imageUUID"], now=time.monotonic() + 31) is None
    # A task's own ttl wins over the knob.
    own = _item(client, task(ttl=90))
    assert store.image(own["imageUUID"], now=time.monotonic() + 60) is not None


@pytest.mark.parametrize(
    ("knob", "status", "fault"),
    [
        ("image_500_rate", 500, "image_500"),
        ("image_garbage_rate", 200, "image_garbage"),
        ("image_truncate_rate", 200, "image_truncated"),
    ],
)
def test_image_host_faults(make_client: MakeClient, knob: str, status: int, fault: str) -> None:
    client = make_client(**{knob: 1.0})
    path = urlsplit(_item(client, task())["imageURL"]).path
    answer = client.get(path)
    assert answer.status_code == status
    whole = render_of(client, path)
    if fault == "image_truncated":
        assert int(answer.headers["Content-Length"]) == len(whole)
        assert answer.headers["Connection"] == "close"
        assert whole.startswith(answer.data) and len(answer.data) < len(whole)
    elif fault == "image_garbage":
        assert answer.data.startswith(b"<!doctype html>")
    stats = client.get("/_control/stats").json
    assert stats["faults"][fault] == 1 and stats["images_served"] == 0
    client.put("/_control/faults", json={knob: 0.0})
    assert client.get(path).data == whole  # then served whole


def render_of(client: FlaskClient, path: str) -> bytes:
    uuid, ext = path.rsplit("/", 1)[1].split(".")
    found = simulator_of(client).image(uuid, ext)
    assert found is not None
    return found[0]


def test_the_image_fault_rates_must_fit_in_one(make_client: MakeClient) -> None:
    client = make_client()
    refused = client.put(
        "/_control/faults", json={"image_500_rate": 0.6, "image_garbage_rate": 0.6}
    )
    assert refused.status_code == 400 and "image_*_rate" in refused.text
