"""The documented example requests of the model pages are accepted and sent on unchanged.

The examples are read from ``../shared/spec`` at test time, so a change of the contract shows up
here instead of in production.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from remixq.providers.runware import MODELS, build_task, parse_request
from tests.support.runware_requests import IMAGE_URL, WEBHOOK
from tests.support.spec_pages import SPEC_DIR, json_objects

# --- the documented examples ------------------------------------------------------------------


def _spec_examples() -> list[Any]:
    if not SPEC_DIR.is_dir():
        reason = f"provider spec not found at {SPEC_DIR}"
        return [pytest.param(None, id="spec-missing", marks=pytest.mark.skip(reason=reason))]
    params = []
    for prefix in ("001_", "000_"):
        (page,) = SPEC_DIR.glob(f"{prefix}*.txt")
        requests = [o for o in json_objects(page.read_text()) if "model" in o]
        for number, example in enumerate(requests, 1):
            params.append(pytest.param(example, id=f"{example['model']}-example-{number}"))
    return params


V4_HAND_MADE = {
    "taskType": "imageInference",
    "taskUUID": "5d0c6f1e-8a2b-4c3d-9e4f-a1b2c3d4e5f6",
    "model": "ideogram:4@remix",
    "positivePrompt": "Turn the storefront into a watercolor travel poster",
    "width": 2560,
    "height": 1440,
    "strength": 0.65,
    "inputs": {"seedImage": IMAGE_URL},
    "settings": {"renderingSpeed": "QUALITY", "copyrightDetection": True},
    "safety": {"checkContent": True},
    "outputFormat": "PNG",
    "outputType": "URL",
    "ttl": 3600,
    "numberResults": 2,
}
EXAMPLES = [*_spec_examples(), pytest.param(V4_HAND_MADE, id="ideogram:4@remix-hand-made")]


def test_the_spec_pages_hold_four_example_requests_each() -> None:
    if not SPEC_DIR.is_dir():
        pytest.skip(f"provider spec not found at {SPEC_DIR}")
    models = [p.values[0]["model"] for p in _spec_examples()]
    assert models.count("ideogram:1@2") == 4
    assert models.count("ideogram:4@2") == 4


@pytest.mark.parametrize("example", EXAMPLES)
def test_documented_example_is_accepted_and_sent_unchanged(example: dict[str, Any]) -> None:
    request = parse_request(example)

    assert isinstance(request, MODELS[example["model"]])
    task = build_task(request, task_uuid=example["taskUUID"], webhook_url=WEBHOOK)
    expected = {**example, "deliveryMethod": "async", "webhookURL": WEBHOOK, "includeCost": True}
    assert task == expected
    assert json.loads(json.dumps(task)) == expected  # plain JSON, nothing pydantic left
