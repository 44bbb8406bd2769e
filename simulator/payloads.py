"""The JSON bodies the simulator sends: the ``POST /v1`` reply, its items, webhook bodies.

An acknowledgement, a finished result and a still-processing entry are built here and nowhere
else, so a sync answer, a webhook and a getResponse answer carry the same item. The reply
itself is a ``Reply`` (status, body, headers) that the web layer serialises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator import assumptions
from simulator.errors import ApiError
from simulator.images import as_base64, as_data_uri, render
from simulator.store import ResultRecord, TaskRecord


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, ready to be serialised by the web layer."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def reply(
    status: int,
    data: list[dict[str, Any]],
    failures: list[ApiError],
    headers: dict[str, str] | None = None,
) -> Reply:
    """``{"data": [...], "errors": [...]}``, each array present only when it has entries."""
    body: dict[str, Any] = {}
    if data:
        body["data"] = data
    if failures:
        body["errors"] = [error.as_json() for error in failures]
    return Reply(status, body, headers or {})


def ack(task_uuid: str) -> dict[str, Any]:
    """The acknowledgement of an accepted async task."""
    return {"taskType": "imageInference", "taskUUID": task_uuid}


def processing(task_uuid: str) -> dict[str, Any]:
    """getResponse's entry for a result that is not finished yet."""
    return {**ack(task_uuid), "status": assumptions.STATUS_PROCESSING}


def result_item(record: TaskRecord, result: ResultRecord, image_max_side: int) -> dict[str, Any]:
    """One finished result, in the output type the task asked for."""
    item: dict[str, Any] = {
        "taskType": "imageInference",
        "taskUUID": record.task_uuid,
        "imageUUID": result.image_uuid,
    }
    spec = result.image
    if record.output_type == "URL":
        item["imageURL"] = f"{record.base_url}/images/{result.image_uuid}.{spec.extension}"
    else:
        data = render(spec, image_max_side)
        if record.output_type == "base64Data":
            item["imageBase64Data"] = as_base64(data)
        else:
            item["imageDataURI"] = as_data_uri(data, spec.mime_type)
    item["seed"] = result.seed
    if result.nsfw is not None:
        item["NSFWContent"] = result.nsfw
    if result.cost is not None:
        item["cost"] = float(result.cost)
    if result.structured_prompt is not None:
        item["structuredPrompt"] = result.structured_prompt
    return item


def result_webhook(item: dict[str, Any], *, bare: bool) -> dict[str, Any]:
    """The body of a result webhook: the bare item, or the item wrapped like a sync answer."""
    return item if bare else {"data": [item]}


def failure_webhook(failure: ApiError) -> dict[str, Any]:
    """The body of a failed task's webhook."""
    return {"errors": [failure.as_json()]}
