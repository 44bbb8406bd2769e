"""Replay every documented request of the 1.0 and 3.0 Remix pages and compare the answers.

The examples are read from ../shared/spec at test time, so a change of the contract shows up
here. The documented responses carry ``cost`` although their requests do not set
``includeCost``; the page says cost is "present when includeCost is set to true", so each example
is replayed as written (no cost) and with ``includeCost: true`` (cost as documented).
"""

from __future__ import annotations

import io
import itertools
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from PIL import Image

from tests.support.simulator import AUTH
from tests.support.spec_pages import SPEC_DIR, json_objects

EXAMPLE_FILES = {"001_*.txt": "ideogram:1@2", "000_*.txt": "ideogram:4@2"}


def extract_examples(text: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(request, response) pairs: every JSON object with a ``model`` and the next with an
    ``imageUUID``, whether fenced in Markdown (001) or run together in page text (000)."""
    objects = json_objects(text)
    return [
        (request, response)
        for request, response in itertools.pairwise(objects)
        if "model" in request and "imageUUID" in response
    ]


def _example_params() -> list[Any]:
    params = []
    for pattern, model in EXAMPLE_FILES.items():
        files = sorted(SPEC_DIR.glob(pattern)) if SPEC_DIR.is_dir() else []
        if not files:
            reason = f"spec file {pattern} not found under {SPEC_DIR}"
            params.append(pytest.param(None, None, marks=pytest.mark.skip(reason=reason)))
            continue
        pairs = extract_examples(Path(files[0]).read_text(encoding="utf-8"))
        assert len(pairs) == 4, f"{files[0].name}: expected 4 examples, found {len(pairs)}"
        for request, response in pairs:
            assert request["model"] == model
            params.append(pytest.param(request, response, id=f"{model}-{request['taskUUID'][:8]}"))
    return params


EXAMPLES = _example_params()


def _replay(client: FlaskClient, request: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1", json=[request], headers=AUTH)
    assert answer.status_code == 200, answer.json
    assert answer.json is not None and "errors" not in answer.json
    (item,) = answer.json["data"]
    assert isinstance(item, dict)
    return item


def _check_common(
    item: dict[str, Any], request: dict[str, Any], documented: dict[str, Any]
) -> None:
    assert item["taskType"] == documented["taskType"] == "imageInference"
    assert item["taskUUID"] == request["taskUUID"] == documented["taskUUID"]
    image_uuid = uuid.UUID(item["imageUUID"])
    assert image_uuid.version == 4 and item["imageUUID"] != documented["imageUUID"]
    assert isinstance(item["seed"], int) and not isinstance(item["seed"], bool)
    assert item["imageURL"].endswith(f"/images/{item['imageUUID']}.jpg")


@pytest.mark.parametrize(("request_body", "documented"), EXAMPLES)
def test_documented_example_replays_as_written(
    client: FlaskClient, request_body: dict[str, Any], documented: dict[str, Any]
) -> None:
    item = _replay(client, request_body)
    _check_common(item, request_body, documented)
    assert set(item) == set(documented) - {"cost"}

    # The URL serves a real JPEG with the requested aspect ratio.
    image = client.get(urlsplit(item["imageURL"]).path)
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    picture = Image.open(io.BytesIO(image.data))
    assert picture.format == "JPEG"
    assert max(picture.size) == 256
    expected = request_body["width"] / request_body["height"]
    assert picture.size[0] / picture.size[1] == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize(("request_body", "documented"), EXAMPLES)
def test_documented_example_with_include_cost_matches_documented_fields(
    client: FlaskClient, request_body: dict[str, Any], documented: dict[str, Any]
) -> None:
    item = _replay(client, {**request_body, "includeCost": True})
    _check_common(item, request_body, documented)
    assert set(item) == set(documented)
    assert item["cost"] == documented["cost"]


def test_extractor_reads_both_page_layouts() -> None:
    fenced = '```json\n{"model": "m", "taskUUID": "a"}\n```\n```json\n{"imageUUID": "b"}\n```'
    run_together = 'Title\n{"model": "m", "x": {"y": 1}}{"imageUUID": "b"}Next {not json'
    assert extract_examples(fenced) == [({"model": "m", "taskUUID": "a"}, {"imageUUID": "b"})]
    assert extract_examples(run_together) == [({"model": "m", "x": {"y": 1}}, {"imageUUID": "b"})]
