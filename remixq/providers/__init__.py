"""The provider seam: every provider remixq can run a job through, behind one protocol.

A job names its provider (``jobs.provider``); producers pick it from a request's
``"provider"`` field (default ``runware``) and ask the provider to validate the request, build
the JSON the job stores, and say its model, its image count and its estimate. Adding a provider
means one package under ``remixq/providers/`` with a ``provider.PROVIDER`` registered below,
and a simulator module.

    runware    ``POST /v1`` tasks, results by webhook or getResponse (delivery "webhook")
    ideogram   Ideogram's own ``POST /v1/ideogram-v3/remix``, synchronous (delivery "sync")

Failures of every provider's client are the classes of ``remixq.providers.errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from remixq.errors import FieldError, InvalidInput
from remixq.providers.ideogram.provider import PROVIDER as IDEOGRAM
from remixq.providers.prices import Prices
from remixq.providers.runware.provider import PROVIDER as RUNWARE
from remixq.url_policy import UrlPolicy

DEFAULT_PROVIDER = "runware"
PROVIDER_FIELD = "provider"


class Provider(Protocol):
    """What producers, estimates and budgets need of a provider."""

    @property
    def name(self) -> str: ...

    @property
    def delivery(self) -> str: ...  # "webhook" or "sync"

    # model -> its rendering speeds, and the default USD per image at each (the price table's
    # defaults, overridable by REMIXQ_PRICE_TABLE).
    @property
    def speeds(self) -> Mapping[str, tuple[str, ...]]: ...

    @property
    def default_prices(self) -> Mapping[str, Mapping[str, Decimal]]: ...

    # False when the API returns no cost: every cost is then the price table's estimate.
    @property
    def reports_cost(self) -> bool: ...

    # Field names holding images (a campaign file's local paths are inlined in them), and how a
    # CSV cell of a field is read (kept as text; "a|b" as a list).
    @property
    def image_fields(self) -> frozenset[str]: ...

    @property
    def stored_image_text(self) -> str: ...  # what an image field holds, for a refusal

    @property
    def text_fields(self) -> frozenset[str]: ...

    @property
    def list_fields(self) -> frozenset[str]: ...

    def parse_request(self, raw: Mapping[str, Any], *, urls: UrlPolicy | None = None) -> Any:
        """The validated request; InvalidInput with located FieldErrors otherwise."""
        ...

    def is_image_reference(self, value: object) -> bool:
        """True for an image value stored as is (not a local path to inline)."""
        ...

    def task_uuid_of(self, request: Any) -> str | None:
        """The taskUUID a request names itself (a producer's idempotency key), if any."""
        ...

    def build_task(self, request: Any, *, task_uuid: str) -> dict[str, Any]:
        """The JSON stored in ``jobs.request``."""
        ...

    def renewed(self, task: Mapping[str, Any], *, task_uuid: str) -> dict[str, Any]:
        """A stored task for a new attempt under ``task_uuid`` (``remixq retry``)."""
        ...

    def model_of(self, task: Mapping[str, Any]) -> str: ...

    def prompt_of(self, task: Mapping[str, Any]) -> str | None:
        """The prompt of a stored task (reports, exports, the gallery)."""
        ...

    def parameters_of(self, task: Mapping[str, Any]) -> dict[str, Any]:
        """A stored task's parameters: everything but its prompt and remixq's own fields."""
        ...

    def source_image_of(self, task: Mapping[str, Any]) -> str | None:
        """The image a stored task remixes, as stored (a URL, a data URI, a UUID...)."""
        ...

    def number_results(self, task: Mapping[str, Any]) -> int: ...

    def rendering_speed(self, task: Mapping[str, Any]) -> str: ...

    def estimate(self, task: Mapping[str, Any], prices: Prices) -> Decimal:
        """USD the stored task should cost at ``prices``."""
        ...


PROVIDERS: dict[str, Provider] = {RUNWARE.name: RUNWARE, IDEOGRAM.name: IDEOGRAM}


def provider_for(name: object) -> Provider:
    """The provider called ``name``; InvalidInput naming the field, the value and the names."""
    if isinstance(name, str) and name in PROVIDERS:
        return PROVIDERS[name]
    raise InvalidInput([FieldError(PROVIDER_FIELD, name, "one of " + ", ".join(PROVIDERS))])


__all__ = [
    "DEFAULT_PROVIDER",
    "PROVIDERS",
    "PROVIDER_FIELD",
    "Prices",
    "Provider",
    "provider_for",
]
