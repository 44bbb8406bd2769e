"""The ``simulator`` click command and configuration from the environment."""

from __future__ import annotations

from decimal import Decimal

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from simulator.cli import simulator
from simulator.config import STATIC_FIELDS, FaultKnobs, SimulatorConfig, env_var


def test_help_documents_every_knob_and_setting() -> None:
    result = CliRunner().invoke(simulator, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: simulator")
    for name in (*FaultKnobs.model_fields, *STATIC_FIELDS):
        assert f"--{name.replace('_', '-')}" in result.output, name
        assert env_var(name) in result.output, name
    for option in ("--host", "--port", "--api-key", "--webhook-retries"):
        assert option in result.output
    for name, field in FaultKnobs.model_fields.items():
        assert field.description, f"knob {name} has no help text"


def test_bad_option_value_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(simulator, ["--failure-rate", "2"])
    assert result.exit_code == 2 and "failure_rate" in result.output


def test_from_env_reads_knobs_and_settings() -> None:
    config = SimulatorConfig.from_env(
        {
            "REMIXQ_SIM_API_KEY": "k",
            "REMIXQ_SIM_LATENCY_MS": "250",
            "REMIXQ_SIM_WEBHOOK_ENVELOPE": "mixed",
            "REMIXQ_SIM_RETRY_AFTER_S": "3",
            "REMIXQ_SIM_WEBHOOK_RETRIES": "2",
            "REMIXQ_SIM_PRICES": '{"ideogram:4@remix": {"QUALITY": "0.12"}}',
            "REMIXQ_SIM_PUBLIC_URL": "",
            "UNRELATED": "x",
        }
    )
    assert config.api_key == "k" and config.public_url is None
    assert config.faults.latency_ms == 250 and config.faults.webhook_envelope == "mixed"
    assert config.faults.retry_after_s == 3 and config.faults.webhook_retries == 2
    assert config.price("ideogram:4@remix", "QUALITY") == Decimal("0.12")
    assert config.price("ideogram:4@remix", "DEFAULT") == Decimal("0.06")
    assert config.price("ideogram:1@2", "TURBO") == Decimal("0.03")


def test_from_env_refuses_bad_values() -> None:
    with pytest.raises(ValidationError):
        SimulatorConfig.from_env({"REMIXQ_SIM_WEBHOOK_DROP_RATE": "1.5"})
    with pytest.raises(ValidationError):
        SimulatorConfig.from_env(
            {"REMIXQ_SIM_SUBMIT_429_RATE": "0.7", "REMIXQ_SIM_SUBMIT_504_RATE": "0.7"}
        )
    with pytest.raises(ValueError, match="unknown simulator setting"):
        SimulatorConfig().with_overrides({"nope": 1})


def test_defaults_are_the_documented_ones() -> None:
    config = SimulatorConfig.from_env({})
    assert config.api_key is None and config.image_max_side == 256
    knobs = config.faults
    assert knobs.failure_code == "timeoutProvider" and knobs.webhook_envelope == "bare"
    assert all(
        getattr(knobs, name) == 0 for name in FaultKnobs.model_fields if name.endswith("_rate")
    )


def test_remixq_simulator_help_documents_every_knob() -> None:
    main = pytest.importorskip("remixq.cli", reason="the main remixq CLI is not there yet")
    result = CliRunner().invoke(main.cli, ["simulator", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in FaultKnobs.model_fields:
        assert f"--{name.replace('_', '-')}" in result.output, name


@pytest.mark.parametrize(
    ("env", "port"),
    [
        ({"REMIXQ_SIMULATOR_PORT": "9123"}, 9123),  # the name the worker and the demo use
        ({"REMIXQ_SIM_PORT": "9124"}, 9124),  # the older name, an alias
        ({"REMIXQ_SIMULATOR_PORT": "9125", "REMIXQ_SIM_PORT": "9126"}, 9125),
    ],
)
def test_the_port_comes_from_the_one_variable_every_process_reads(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], port: int, root_restored: None
) -> None:
    from simulator import server

    served: list[int] = []
    monkeypatch.setattr(server, "serve", lambda _c, _h, p, **_k: served.append(p))
    for name in ("REMIXQ_SIMULATOR_PORT", "REMIXQ_SIM_PORT"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(simulator, [], env=env)
    assert result.exit_code == 0, result.output
    assert served == [port]
