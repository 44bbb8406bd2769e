"""``build_task``: the task object sent for a parsed request."""

from __future__ import annotations

import pytest

from remixq.providers.runware import build_task, parse_request
from tests.support.runware_requests import IMAGE_URL, TASK_UUID, V1_OK, V4_OK, WEBHOOK, changed


def test_build_task_adds_platform_fields_and_omits_unset_ones() -> None:
    request = parse_request(changed(V4_OK, {"strength": 1, "settings.renderingSpeed": "TURBO"}))

    task = build_task(request, task_uuid=TASK_UUID, webhook_url=None)

    assert task == {
        "taskType": "imageInference",
        "taskUUID": TASK_UUID,
        "model": "ideogram:4@remix",
        "positivePrompt": "A retro cereal box",
        "width": 2048,
        "height": 2048,
        "inputs": {"seedImage": IMAGE_URL},
        "strength": 1.0,
        "settings": {"renderingSpeed": "TURBO"},
        "deliveryMethod": "async",
        "includeCost": True,
    }


def test_build_task_uses_the_given_task_uuid_and_is_pure() -> None:
    request = parse_request({**V1_OK, "taskUUID": "5d0c6f1e-8a2b-4c3d-9e4f-a1b2c3d4e5f6"})
    before = request.model_dump()

    first = build_task(request, task_uuid=TASK_UUID, webhook_url=WEBHOOK)
    second = build_task(request, task_uuid=TASK_UUID, webhook_url=WEBHOOK)

    assert first == second
    assert first["taskUUID"] == TASK_UUID
    assert request.model_dump() == before
    assert request.task_uuid == "5d0c6f1e-8a2b-4c3d-9e4f-a1b2c3d4e5f6"


def test_build_task_refuses_a_task_uuid_that_is_not_v4() -> None:
    request = parse_request(V1_OK)
    with pytest.raises(ValueError, match="UUID v4"):
        build_task(request, task_uuid="123", webhook_url=None)
