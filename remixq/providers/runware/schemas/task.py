"""``build_task``: a parsed request to the exact ``imageInference`` task sent to ``POST /v1``;
``with_webhook``: that task with the webhook it is handed over with.

remixq adds the fields it manages (the task id, async delivery, the webhook, the cost) here and
nowhere else. A stored task carries no webhook: the URL is a delivery detail of the deployment
that submits it (the worker's public URL and secret), added at hand-off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remixq.providers.runware.schemas.models import RemixRequest
from remixq.providers.runware.schemas.values import is_uuid4


def build_task(request: RemixRequest, *, task_uuid: str, webhook_url: str | None) -> dict[str, Any]:
    """The exact ``imageInference`` task object to POST for ``request``.

    ``task_uuid`` is authoritative: the caller stores it before submitting (and should take it
    from ``request.task_uuid`` when the user supplied one). Unset fields are omitted, so the
    provider's defaults apply; nesting and wire names are the model page's.
    """
    if not is_uuid4(task_uuid):
        raise ValueError(f"task_uuid must be a UUID v4, got {task_uuid!r}")
    body = request.model_dump(by_alias=True, exclude_unset=True, mode="json")
    body.pop("taskType", None)
    body.pop("taskUUID", None)
    task: dict[str, Any] = {"taskType": "imageInference", "taskUUID": task_uuid, **body}
    task["deliveryMethod"] = "async"  # ack now, result by webhook or getResponse
    task["includeCost"] = True  # the ledger records the provider's own cost per image
    if webhook_url is not None:
        task["webhookURL"] = webhook_url
    return task


def with_webhook(task: Mapping[str, Any], webhook_url: str) -> dict[str, Any]:
    """A copy of the stored ``task`` with ``webhookURL`` set to ``webhook_url`` (one a job
    stored by an earlier version still carries is replaced)."""
    return {**task, "webhookURL": webhook_url}
