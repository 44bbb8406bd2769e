"""What images cost before they are made: a price table (USD per image, by model and rendering
speed) and the estimate of a request.

The defaults are the listed prices (``simulator/config.py`` ``default_prices``, assumption A10 of
the simulator: TURBO 0.03, DEFAULT 0.06, QUALITY 0.09 USD per image for every model; 0.06 is the
cost of every documented example). ``REMIXQ_PRICE_TABLE`` names a JSON or YAML file whose entries
replace them, model by model::

    ideogram:4@2: "0.08"                   # every rendering speed of the model
    ideogram:1@2: {TURBO: 0.02, QUALITY: "0.1"}   # the speeds named; the others keep defaults

A price is a string or a number (a number is read by its decimal spelling, ``0.07`` is exactly
7 cents), at least 0, with at most 10 decimal places (the ledger's scale). The estimate of a
request is ``numberResults`` (default 1) times the price of its model at its rendering speed
(default DEFAULT), which 1.0 and 3.0 take in ``providerSettings.ideogram.renderingSpeed`` and
4.0 in ``settings.renderingSpeed``.
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
from remixq.providers.runware import MODEL_IDS
from remixq.reports import money

if TYPE_CHECKING:
    from remixq.config import Settings

SPEEDS = ("TURBO", "DEFAULT", "QUALITY")
DEFAULT_SPEED = "DEFAULT"
DEFAULT_NUMBER_RESULTS = 1  # the platform's default numberResults
# USD per image at each rendering speed, the same for every model (the listed prices).
DEFAULT_SPEED_PRICES: Mapping[str, Decimal] = {
    "TURBO": Decimal("0.03"),
    "DEFAULT": Decimal("0.06"),
    "QUALITY": Decimal("0.09"),
}
# The one model that keeps its rendering speed in ``settings`` instead of providerSettings.
_SETTINGS_SPEED_MODELS = frozenset({"ideogram:4@remix"})
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
        """The listed prices: TURBO 0.03, DEFAULT 0.06, QUALITY 0.09 USD for every model."""
        return cls({model: dict(DEFAULT_SPEED_PRICES) for model in MODEL_IDS})

    @classmethod
    def from_mapping(cls, data: object, *, source: str = SETTING) -> PriceTable:
        """The defaults with ``data``'s entries in their place: ``{model: price}`` or
        ``{model: {speed: price}}``; InvalidInput naming each bad model, speed and value."""
        if not isinstance(data, Mapping):
            raise InvalidInput(
                [FieldError(source, data, "a mapping of model to price, or to {speed: price}")]
            )
        prices = {model: dict(DEFAULT_SPEED_PRICES) for model in MODEL_IDS}
        errors: list[FieldError] = []
        for model, entry in data.items():
            if model not in prices:
                allowed = "a model id: one of " + ", ".join(MODEL_IDS)
                errors.append(FieldError("model", model, allowed, source))
                continue
            if isinstance(entry, Mapping):
                for speed, value in entry.items():
                    if speed not in SPEEDS:
                        allowed = "a rendering speed: one of " + ", ".join(SPEEDS)
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
                allowed = f"{_PRICE}; or a mapping of rendering speed ({', '.join(SPEEDS)}) to one"
                errors.append(FieldError(model, entry, allowed, source))
            else:
                prices[model] = dict.fromkeys(SPEEDS, price)
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


def rendering_speed(request: Mapping[str, Any]) -> str:
    """The rendering speed of a request (as stored in ``jobs.request``), where its model keeps
    it; DEFAULT when it names none."""
    if request.get("model") in _SETTINGS_SPEED_MODELS:
        holder = request.get("settings")
    else:
        provider = request.get("providerSettings")
        holder = provider.get("ideogram") if isinstance(provider, Mapping) else None
    speed = holder.get("renderingSpeed") if isinstance(holder, Mapping) else None
    return speed if isinstance(speed, str) else DEFAULT_SPEED


def number_results(request: Mapping[str, Any]) -> int:
    """How many images a request asks for (the platform's default: 1)."""
    value = request.get("numberResults", DEFAULT_NUMBER_RESULTS)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def estimate(request: Mapping[str, Any], table: PriceTable) -> Decimal:
    """What a validated request (as stored in ``jobs.request``) should cost: numberResults times
    the price of its model at its rendering speed."""
    return number_results(request) * table.price(
        str(request.get("model")), rendering_speed(request)
    )


def total(requests: Iterable[Mapping[str, Any]], table: PriceTable) -> Decimal:
    """The estimate of several requests, exact."""
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
    requests: Iterable[tuple[Mapping[str, Any], dict[str, Any] | None]],
    table: PriceTable,
    *,
    label: Callable[[dict[str, Any] | None], str],
) -> Estimate:
    """The estimate of (request, variant) pairs, requests as stored in ``jobs.request``;
    ``label`` names a variant (its grouping key)."""
    total = Tally()
    by_model: dict[str, Tally] = {}
    by_variant: dict[str, tuple[dict[str, Any] | None, Tally]] = {}
    for request, variant in requests:
        images, cost = number_results(request), estimate(request, table)
        total.add(images, cost)
        by_model.setdefault(str(request.get("model")), Tally()).add(images, cost)
        by_variant.setdefault(label(variant), (variant, Tally()))[1].add(images, cost)
    return Estimate(total, dict(sorted(by_model.items())), by_variant)
