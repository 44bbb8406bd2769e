"""Ideogram's own API seen through the provider seam (``remixq.providers.Provider``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from remixq.providers.ideogram import assumptions as A
from remixq.providers.ideogram.images import is_image_reference
from remixq.providers.ideogram.schemas import RemixRequest, build_request, parse_request
from remixq.providers.prices import Prices
from remixq.url_policy import UrlPolicy


class IdeogramProvider:
    """``POST /v1/ideogram-v3/remix``: synchronous, one model, no cost in the answer."""

    name = "ideogram"
    delivery = "sync"
    speeds: Mapping[str, tuple[str, ...]] = {A.MODEL_ID: A.SPEEDS}
    default_prices: Mapping[str, Mapping[str, Decimal]] = {A.MODEL_ID: A.DEFAULT_PRICES}
    # What an image field may hold where no local file is read (an API body, an upload).
    stored_image_text = "a data:image/...;base64 URI or an https URL"
    reports_cost = False  # every cost of this provider is the price table's estimate
    image_fields = frozenset(A.FILE_FIELDS)
    text_fields = frozenset({"prompt", "negative_prompt", "resolution", "aspect_ratio"})
    list_fields = frozenset(
        {
            "style_codes",
            "style_reference_images",
            "character_reference_images",
            "character_reference_images_mask",
        }
    )

    def parse_request(
        self, raw: Mapping[str, Any], *, urls: UrlPolicy | None = None
    ) -> RemixRequest:
        return parse_request(raw, urls=urls)

    def is_image_reference(self, value: object) -> bool:
        return is_image_reference(value)

    def task_uuid_of(self, request: Any) -> str | None:
        return request.task_uuid if isinstance(request, RemixRequest) else None

    def build_task(self, request: Any, *, task_uuid: str) -> dict[str, Any]:
        # The API has no task id: the job's task_uuid column is remixq's own key.
        del task_uuid
        return build_request(request)

    def renewed(self, task: Mapping[str, Any], *, task_uuid: str) -> dict[str, Any]:
        del task_uuid
        return dict(task)

    def model_of(self, task: Mapping[str, Any]) -> str:  # noqa: ARG002 (one model)
        return A.MODEL_ID

    def prompt_of(self, task: Mapping[str, Any]) -> str | None:
        prompt = task.get("prompt")
        return prompt if isinstance(prompt, str) else None

    def parameters_of(self, task: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in task.items() if k != "prompt"}

    def source_image_of(self, task: Mapping[str, Any]) -> str | None:
        image = task.get("image")
        return image if isinstance(image, str) else None

    def number_results(self, task: Mapping[str, Any]) -> int:
        value = task.get("num_images", 1)
        return value if isinstance(value, int) and not isinstance(value, bool) else 1

    def rendering_speed(self, task: Mapping[str, Any]) -> str:
        speed = task.get("rendering_speed")
        return speed if isinstance(speed, str) else A.DEFAULT_SPEED

    def estimate(self, task: Mapping[str, Any], prices: Prices) -> Decimal:
        return self.number_results(task) * prices.price(A.MODEL_ID, self.rendering_speed(task))


PROVIDER = IdeogramProvider()
