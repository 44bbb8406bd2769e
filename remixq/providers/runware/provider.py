"""Runware's task API seen through the provider seam (``remixq.providers.Provider``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from remixq.providers.prices import Prices
from remixq.providers.runware.schemas import (
    MODEL_IDS,
    RemixRequest,
    build_task,
    is_image_reference,
    parse_request,
)
from remixq.url_policy import UrlPolicy

SPEEDS = ("TURBO", "DEFAULT", "QUALITY")
DEFAULT_SPEED = "DEFAULT"
DEFAULT_NUMBER_RESULTS = 1  # the platform's default numberResults
# USD per image at each rendering speed, the same for every model (the listed prices; the
# simulator's assumption A10: TURBO 0.03, DEFAULT 0.06, QUALITY 0.09).
DEFAULT_SPEED_PRICES: Mapping[str, Decimal] = {
    "TURBO": Decimal("0.03"),
    "DEFAULT": Decimal("0.06"),
    "QUALITY": Decimal("0.09"),
}
# What an export lists apart from a task's parameters.
_NOT_PARAMETERS = frozenset({"taskType", "taskUUID", "model", "positivePrompt", "webhookURL"})
# The one model that keeps its rendering speed in ``settings`` instead of providerSettings.
_SETTINGS_SPEED_MODELS = frozenset({"ideogram:4@remix"})


def rendering_speed(task: Mapping[str, Any]) -> str:
    """The rendering speed of a task (as stored in ``jobs.request``), where its model keeps
    it; DEFAULT when it names none."""
    if task.get("model") in _SETTINGS_SPEED_MODELS:
        holder = task.get("settings")
    else:
        provider = task.get("providerSettings")
        holder = provider.get("ideogram") if isinstance(provider, Mapping) else None
    speed = holder.get("renderingSpeed") if isinstance(holder, Mapping) else None
    return speed if isinstance(speed, str) else DEFAULT_SPEED


def number_results(task: Mapping[str, Any]) -> int:
    """How many images a task asks for (the platform's default: 1)."""
    value = task.get("numberResults", DEFAULT_NUMBER_RESULTS)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


class RunwareProvider:
    """``POST /v1`` imageInference tasks: asynchronous, results by webhook or getResponse."""

    name = "runware"
    delivery = "webhook"
    speeds: Mapping[str, tuple[str, ...]] = dict.fromkeys(MODEL_IDS, SPEEDS)
    default_prices: Mapping[str, Mapping[str, Decimal]] = dict.fromkeys(
        MODEL_IDS, DEFAULT_SPEED_PRICES
    )
    # What an image field may hold where no local file is read (an API body, an upload).
    stored_image_text = "a UUID, an http(s) URL, a data URI or base64"
    reports_cost = True  # includeCost: the ledger records the provider's own cost
    image_fields = frozenset(
        {
            "referenceImages",
            "seedImage",
            "styleReferenceImages",
            "characterReferenceImages",
            "characterReferenceImagesMask",
        }
    )
    # CSV cells are text; these stay text even when they look like numbers or JSON.
    text_fields = frozenset(
        {
            "positivePrompt",
            "negativePrompt",
            "model",
            "taskUUID",
            "taskType",
            "uploadEndpoint",
            "styleCode",
        }
    )
    # In CSV, a list of images may be written as "a.png|b.png" instead of a JSON array.
    list_fields = frozenset(
        {
            "referenceImages",
            "styleReferenceImages",
            "characterReferenceImages",
            "characterReferenceImagesMask",
        }
    )

    def parse_request(
        self, raw: Mapping[str, Any], *, urls: UrlPolicy | None = None
    ) -> RemixRequest:
        return parse_request(raw, urls=urls)

    def is_image_reference(self, value: object) -> bool:
        return isinstance(value, str) and is_image_reference(value)

    def task_uuid_of(self, request: Any) -> str | None:
        given = getattr(request, "task_uuid", None)
        return given if isinstance(given, str) else None

    def build_task(self, request: Any, *, task_uuid: str) -> dict[str, Any]:
        # A stored task has no webhookURL: the worker adds its own at hand-off.
        return build_task(request, task_uuid=task_uuid, webhook_url=None)

    def renewed(self, task: Mapping[str, Any], *, task_uuid: str) -> dict[str, Any]:
        # A job stored by an earlier version carries a webhookURL; the worker adds its own.
        return {k: v for k, v in task.items() if k != "webhookURL"} | {"taskUUID": task_uuid}

    def model_of(self, task: Mapping[str, Any]) -> str:
        return str(task.get("model"))

    def prompt_of(self, task: Mapping[str, Any]) -> str | None:
        prompt = task.get("positivePrompt")
        return prompt if isinstance(prompt, str) else None

    def parameters_of(self, task: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in task.items() if k not in _NOT_PARAMETERS}

    def source_image_of(self, task: Mapping[str, Any]) -> str | None:
        # The first of inputs.referenceImages (1.0 and 3.0 Remix) or inputs.seedImage (4.0).
        inputs = task.get("inputs")
        if not isinstance(inputs, Mapping):
            return None
        refs = inputs.get("referenceImages")
        if isinstance(refs, list) and refs and isinstance(refs[0], str):
            return refs[0]
        seed = inputs.get("seedImage")
        return seed if isinstance(seed, str) else None

    def number_results(self, task: Mapping[str, Any]) -> int:
        return number_results(task)

    def rendering_speed(self, task: Mapping[str, Any]) -> str:
        return rendering_speed(task)

    def estimate(self, task: Mapping[str, Any], prices: Prices) -> Decimal:
        return number_results(task) * prices.price(str(task.get("model")), rendering_speed(task))


PROVIDER = RunwareProvider()
