"""The price table: the listed defaults (the simulator's, exactly), overrides from JSON and YAML
files, refusals naming model, speed and value, and the estimate of a stored request."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from remixq.config import load_settings
from remixq.errors import InvalidInput
from remixq.pricing import PriceTable, estimate, rendering_speed
from remixq.providers.runware import MODEL_IDS, build_task, parse_request
from simulator.config import default_prices
from simulator.models import rendering_speed as simulator_rendering_speed

REFERENCE = "https://example.com/tin.png"


def _task(request: dict[str, object]) -> dict[str, object]:
    return build_task(parse_request(request), task_uuid=str(uuid.uuid4()), webhook_url=None)


def test_the_defaults_are_the_simulators_prices() -> None:
    table = PriceTable.default()
    assert table.prices == default_prices()
    assert set(table.prices) == {*MODEL_IDS, "ideogram-v3-remix"}  # Ideogram's own API too
    assert table.price("ideogram-v3-remix", "FLASH") == Decimal("0.015")
    assert table.price("ideogram:4@2", "TURBO") == Decimal("0.03")
    assert table.price("ideogram:4@2", None) == Decimal("0.06")
    assert table.price("ideogram:1@2", "QUALITY") == Decimal("0.09")


@pytest.mark.parametrize(
    ("request_", "speed", "cost"),
    [
        (
            {
                "model": "ideogram:4@2",
                "positivePrompt": "a tea tin",
                "width": 1024,
                "height": 1024,
                "numberResults": 3,
                "inputs": {"referenceImages": [REFERENCE]},
                "providerSettings": {"ideogram": {"renderingSpeed": "QUALITY"}},
            },
            "QUALITY",
            "0.27",
        ),
        (
            {
                "model": "ideogram:1@2",
                "positivePrompt": "a tea tin",
                "width": 1024,
                "height": 1024,
                "inputs": {"referenceImages": [REFERENCE]},
            },
            "DEFAULT",
            "0.06",
        ),
        (
            {
                "model": "ideogram:4@remix",
                "positivePrompt": "a tea tin",
                "width": 2048,
                "height": 2048,
                "numberResults": 2,
                "inputs": {"seedImage": REFERENCE},
                "settings": {"renderingSpeed": "TURBO"},
            },
            "TURBO",
            "0.06",
        ),
    ],
)
def test_the_estimate_reads_the_speed_where_each_model_keeps_it(
    request_: dict[str, object], speed: str, cost: str
) -> None:
    task = _task(request_)
    assert rendering_speed(task) == speed == simulator_rendering_speed(task)
    assert estimate(task, PriceTable.default()) == Decimal(cost)


def test_a_json_file_replaces_the_models_it_names(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"ideogram:4@2": "0.08", "ideogram:1@2": {"TURBO": 0.02, "QUALITY": "0.1"}}')
    table = PriceTable.load(path)
    assert table.price("ideogram:4@2", "TURBO") == table.price("ideogram:4@2") == Decimal("0.08")
    assert table.price("ideogram:1@2", "TURBO") == Decimal("0.02")  # a float, read exactly
    assert table.price("ideogram:1@2", "QUALITY") == Decimal("0.1")
    assert table.price("ideogram:1@2", "DEFAULT") == Decimal("0.06")  # not named: the default
    assert table.price("ideogram:4@remix", "QUALITY") == Decimal("0.09")


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_yaml_file_is_read_the_same(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"prices{suffix}"
    path.write_text('ideogram:4@remix:\n  QUALITY: "0.125"\n  TURBO: 0.0013\nideogram:4@2: 1\n')
    settings = load_settings(REMIXQ_PRICE_TABLE=str(path))
    table = PriceTable.configured(settings)
    assert table.price("ideogram:4@remix", "QUALITY") == Decimal("0.125")
    assert table.price("ideogram:4@remix", "TURBO") == Decimal("0.0013")
    assert table.price("ideogram:4@2", "DEFAULT") == Decimal(1)


def test_without_a_file_the_defaults_apply() -> None:
    assert PriceTable.configured(load_settings(REMIXQ_PRICE_TABLE="")) == PriceTable.default()


@pytest.mark.parametrize(
    ("data", "field", "value", "allowed"),
    [
        ({"ideogram:9@9": "0.1"}, "model", "ideogram:9@9", "one of ideogram:1@2"),
        ({"ideogram:4@2": {"FAST": "0.1"}}, "ideogram:4@2.FAST", "FAST", "TURBO, DEFAULT"),
        ({"ideogram:4@2": {"TURBO": "-0.1"}}, "ideogram:4@2.TURBO", "-0.1", "at least 0"),
        ({"ideogram:4@2": {"TURBO": True}}, "ideogram:4@2.TURBO", True, "a number"),
        ({"ideogram:4@2": "cheap"}, "ideogram:4@2", "cheap", "a decimal string"),
        ({"ideogram:4@2": "NaN"}, "ideogram:4@2", "NaN", "at least 0"),
        ({"ideogram:4@2": "0.12345678901"}, "ideogram:4@2", "0.12345678901", "10 decimal"),
        ({"ideogram:4@2": None}, "ideogram:4@2", None, "a mapping of rendering speed"),
        (["ideogram:4@2"], "REMIXQ_PRICE_TABLE", ["ideogram:4@2"], "a mapping of model"),
    ],
)
def test_bad_entries_are_refused_naming_model_speed_and_value(
    data: object, field: str, value: object, allowed: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        PriceTable.from_mapping(data)
    [error] = refused.value.errors
    assert (error.field, error.value) == (field, value)
    assert allowed in error.allowed


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("prices.json", '{"ideogram:4@2": ', "a JSON document"),
        ("prices.yaml", "ideogram:4@2: [0.1\n", "a YAML document"),
        ("prices.toml", "x = 1", "a .json, .yaml or .yml file"),
        ("missing.json", None, "a readable UTF-8 file"),
    ],
)
def test_a_bad_file_is_one_line_naming_it(
    tmp_path: Path, name: str, text: str | None, expected: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(InvalidInput) as refused:
        PriceTable.load(path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"REMIXQ_PRICE_TABLE {path}: file: {name!r} is not allowed; ")
    assert expected in message


def test_a_file_error_names_the_file_as_its_location(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("ideogram:4@2: {QUALITY: lots}\n")
    with pytest.raises(InvalidInput) as refused:
        PriceTable.load(path)
    assert str(refused.value).startswith(f"REMIXQ_PRICE_TABLE {path}: ideogram:4@2.QUALITY: 'lots'")
