"""What images cost before they are made: a price table (USD per image, by model and rendering
speed) and the estimate of a request.

The defaults are the listed prices (``simulator/config.py`` ``default_prices``, assumption A10 of
the simulator: TURBO 0.03, DEFAULT 0.06, QUALITY 0.09 USD per image for every model; 0.06 is the
cost of every documented example). ``REMIXQ_PRICE_TABLE`` names a JSON or YAML file whose entries
replace them, model by model::

    ideogram:4@2: "0.08"                   # every rendering speed of the model
    ideogram:1@2: {TURBO: 0.02, QUALITY: "0.1"}   # the speeds named; the others keep defaults

    ideogram-v3-remix: {FLASH: 0.01, TURBO: 0.03}  # Ideogram's own API (it has FLASH too)

A price is a string or a number (a number is read by its decimal spelling, ``0.07`` is exactly
7 cents), at least 0, with at most 10 decimal places (the ledger's scale). The estimate of a
request is its image count times the price of its model at its rendering speed (default
DEFAULT), each read where its provider keeps it (``remixq.providers``): for Runware,
``numberResults`` (default 1) and ``providerSettings.ideogram.renderingSpeed`` (1.0 and 3.0) or
``settings.renderingSpeed`` (4.0); for Ideogram's own API, ``num_images`` and
``rendering_speed``, at the prices of ``ideogram-v3-remix`` (an assumption: the API reports no
cost, so every cost of that provider is this estimate).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from remixq.budgets import parse_amount as parse_price
from remixq.db import MONEY_SCALE
from remixq.errors import FieldError, InvalidInput
from remixq.providers import PROVIDERS, provider_for
from remixq.providers.runware.provider import DEFAULT_SPEED_PRICES as RUNWARE_SPEED_PRICES
from remixq.providers.runware.provider import SPEEDS as RUNWARE_SPEEDS

# Runware's readings of a stored task, importable from here as before.
from remixq.providers.runware.provider import number_results as number_results
from remixq.providers.runware.provider import rendering_speed as rendering_speed
from remixq.reports import money

if TYPE_CHECKING:
    from remixq.config import Settings

# model -> its rendering speeds, and their default prices, from every provider.
MODEL_SPEEDS: Mapping[str, tuple[str, ...]] = {
    model: speeds for provider in PROVIDERS.values() for model, speeds in provider.speeds.items()
}
DEFAULT_PRICES: Mapping[str, Mapping[str, Decimal]] = {
    model: by_speed
    for provider in PROVIDERS.values()
    for model, by_speed in provider.default_prices.items()
}
MODEL_IDS = tuple(MODEL_SPEEDS)
# The Runware models' speeds (every Runware model has the same three).
SPEEDS = RUNWARE_SPEEDS
DEFAULT_SPEED = "DEFAULT"
DEFAULT_NUMBER_RESULTS = 1  # the platform's default numberResults
DEFAULT_SPEED_PRICES = RUNWARE_SPEED_PRICES
SETTING = "REMIXQ_PRICE_TABLE"
MAX_TABLE_BYTES = 1024 * 1024
_PRICE = (
    "a price in USD per image: a number or a decimal string, at least 0, with at most"
    f" {MONEY_SCALE} decimal places"
)


@dataclass(frozen=True)
class PriceTable:
    """USD per image by model and rendering speed; every model of MODEL_IDS at every speed."""

    prices: Mapping[str, Mapping[str, Decimal]]
    source: str = "the default prices"

    @classmethod
    def default(cls) -> PriceTable:
        """The listed prices of every provider's models (Runware's: TURBO 0.03, DEFAULT 0.06,
        QUALITY 0.09 USD for every model; Ideogram's: its assumptions.DEFAULT_PRICES)."""
        return cls({model: dict(by_speed) for model, by_speed in DEFAULT_PRICES.items()})

    @classmethod
    def from_mapping(cls, data: object, *, source: str = SETTING) -> PriceTable:
        """The defaults with ``data``'s entries in their place: ``{model: price}`` or
        ``{model: {speed: price}}``; InvalidInput naming each bad model, speed and value."""
        if not isinstance(data, Mapping):
            raise InvalidInput(
                [FieldError(source, data, "a mapping of model to price, or to {speed: price}")]
            )
        prices = {model: dict(by_speed) for model, by_speed in DEFAULT_PRICES.items()}
        errors: list[FieldError] = []
        for model, entry in data.items():
            if model not in prices:
                allowed = "a model id: one of " + ", ".join(MODEL_IDS)
                errors.append(FieldError("model", model, allowed, source))
                continue
            if isinstance(entry, Mapping):
                for speed, value in entry.items():
                    if speed not in MODEL_SPEEDS[model]:
                        allowed = "a rendering speed: one of " + ", ".join(MODEL_SPEEDS[model])
                        errors.append(FieldError(f"{model}.{speed}", speed, allowed, source))
                        continue
                    price = parse_price(value)
                    if price is None:
                        errors.append(FieldError(f"{model}.{speed}", value, _PRICE, source))
                    else:
                        prices[model][speed] = price
                continue
            price = parse_price(entry)
            if price is None:
                speeds = ", ".join(MODEL_SPEEDS[model])
                allowed = f"{_PRICE}; or a mapping of rendering speed ({speeds}) to one"
                errors.append(FieldError(model, entry, allowed, source))
            else:
                prices[model] = dict.fromkeys(MODEL_SPEEDS[model], price)
        if errors:
            raise InvalidInput(errors)
        return cls(prices, source)

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        """The table of a JSON (``.json``) or YAML (``.yaml``, ``.yml``) file, merged over the
        defaults; InvalidInput (one line per problem, naming the file) otherwise."""
        source = f"{SETTING} {path}"

        def refused(allowed: str) -> InvalidInput:
            return InvalidInput([FieldError("file", path.name, allowed, source)])

        suffix = path.suffix.lower()
        if suffix not in (".json", ".yaml", ".yml"):
            raise refused("a .json, .yaml or .yml file")
        try:
            if path.stat().st_size > MAX_TABLE_BYTES:
                raise refused("a file of at most 1 MiB")
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else None
            raise refused(f"a readable UTF-8 file ({reason or type(exc).__name__})") from None
        try:
            data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            kind = "JSON" if suffix == ".json" else "YAML"
            raise refused(f"a {kind} document ({' '.join(str(exc).split())})") from None
        return cls.from_mapping(data, source=source)

    @classmethod
    def configured(cls, settings: Settings) -> PriceTable:
        """The prices estimates use: REMIXQ_PRICE_TABLE's file over the defaults, else the
        defaults; InvalidInput (naming the file and the bad entry) for a file that is not one."""
        if settings.price_table_path is None:
            return cls.default()
        return cls.load(settings.price_table_path)

    def price(self, model: str, speed: str | None = None) -> Decimal:
        """USD per image of ``model`` at ``speed`` (None: DEFAULT); InvalidInput for a model or
        speed the table does not know."""
        speed = speed or DEFAULT_SPEED
        by_speed = self.prices.get(model)
        if by_speed is None:
            raise InvalidInput(
                [FieldError("model", model, "a model id: one of " + ", ".join(self.prices))]
            )
        if speed not in by_speed:
            allowed = "a rendering speed: one of " + ", ".join(by_speed)
            raise InvalidInput([FieldError("renderingSpeed", speed, allowed)])
        return by_speed[speed]

    def as_json(self) -> dict[str, dict[str, str]]:
        """The table with its prices as decimal strings."""
        return {m: {s: str(p) for s, p in by.items()} for m, by in self.prices.items()}


def estimate(request: Mapping[str, Any], table: PriceTable, provider: str = "runware") -> Decimal:
    """What a validated request (as stored in ``jobs.request``) of ``provider`` should cost:
    its image count times the price of its model at its rendering speed."""
    return provider_for(provider).estimate(request, table)


def total(requests: Iterable[Mapping[str, Any]], table: PriceTable) -> Decimal:
    """The estimate of several Runware requests, exact."""
    return sum((estimate(request, table) for request in requests), Decimal(0))


@dataclass
class Tally:
    """Jobs, images and their estimated cost (USD) of one group."""

    jobs: int = 0
    images: int = 0
    cost: Decimal = Decimal(0)

    def add(self, images: int, cost: Decimal) -> None:
        self.jobs += 1
        self.images += images
        self.cost += cost

    def as_json(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "images": self.images, "estimated_cost_usd": money(self.cost)}


@dataclass(frozen=True)
class Estimate:
    """What a set of requests should cost: in all, per model, and per variant (keyed by its
    label, in the order the variants first appear)."""

    total: Tally
    by_model: dict[str, Tally]
    by_variant: dict[str, tuple[dict[str, Any] | None, Tally]]


def estimate_all(
    requests: Iterable[tuple[Mapping[str, Any], dict[str, Any] | None]]
    | Iterable[tuple[Mapping[str, Any], dict[str, Any] | None, str]],
    table: PriceTable,
    *,
    label: Callable[[dict[str, Any] | None], str],
) -> Estimate:
    """The estimate of (request, variant) pairs, or (request, variant, provider) triples,
    requests as stored in ``jobs.request`` (a pair is a Runware request); ``label`` names a
    variant (its grouping key)."""
    total = Tally()
    by_model: dict[str, Tally] = {}
    by_variant: dict[str, tuple[dict[str, Any] | None, Tally]] = {}
    for request, variant, *rest in requests:
        provider = provider_for(rest[0] if rest else "runware")
        images, cost = provider.number_results(request), provider.estimate(request, table)
        total.add(images, cost)
        by_model.setdefault(provider.model_of(request), Tally()).add(images, cost)
        by_variant.setdefault(label(variant), (variant, Tally()))[1].add(images, cost)
    return Estimate(total, dict(sorted(by_model.items())), by_variant)
