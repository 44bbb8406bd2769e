"""What a provider needs of a price table to estimate a task (``remixq.pricing.PriceTable``
is one): a protocol here, so that the providers never import the table."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol


class Prices(Protocol):
    def price(self, model: str, speed: str | None = None) -> Decimal:
        """USD per image of ``model`` at ``speed`` (None: the model's default)."""
        ...
