"""The settings of Ideogram's own API: the local simulator without a key (as for Runware), the
real endpoint with one, a timeout suited to generation, and a key that is a secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from remixq.config import load_settings


def test_without_a_key_the_local_simulator_answers() -> None:
    settings = load_settings(REMIXQ_SIMULATOR_PORT="8799")
    assert settings.ideogram_uses_simulator
    assert settings.ideogram_url == "http://127.0.0.1:8799"
    assert settings.ideogram_key == "simulator"
    assert settings.ideogram_timeout == 120
    assert "127.0.0.1:8799" in settings.local_image_hosts  # its image links are local


def test_with_a_key_the_configured_endpoint_is_used() -> None:
    settings = load_settings(
        IDEOGRAM_API_KEY="ideo-key-0123456789",
        IDEOGRAM_API_URL="https://api.ideogram.example/",
        RUNWARE_API_KEY="rw-key-0123456789",
        REMIXQ_IDEOGRAM_TIMEOUT="90",
    )
    assert not settings.ideogram_uses_simulator
    assert settings.ideogram_url == "https://api.ideogram.example"
    assert settings.ideogram_key == "ideo-key-0123456789"
    assert settings.ideogram_timeout == 90
    assert "ideo-key-0123456789" in settings.configured_secrets()  # never logged
    assert "ideo-key-0123456789" not in repr(settings)
    assert settings.local_image_hosts == settings.image_local_hosts


def test_a_simulator_elsewhere_may_be_named_without_a_key() -> None:
    settings = load_settings(IDEOGRAM_API_URL="http://127.0.0.1:9001", IDEOGRAM_API_KEY="")
    assert settings.ideogram_uses_simulator and settings.ideogram_url == "http://127.0.0.1:9001"
    assert "127.0.0.1:9001" in settings.local_image_hosts


def test_the_timeout_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        load_settings(REMIXQ_IDEOGRAM_TIMEOUT="0")
