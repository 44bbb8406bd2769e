"""The worker's start-up warnings about where the provider's webhooks will go."""

from __future__ import annotations

import logging

import pytest

from remixq.cli.processes import free_port
from remixq.config import load_settings
from worker.checks import check_webhook_url


def test_an_unset_public_url_with_a_real_key_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there
    settings = load_settings(runware_api_key="rw-key", receiver_port=port, public_url=None)

    with caplog.at_level(logging.WARNING, logger="remixq.worker"):
        check_webhook_url(settings, wait=0.1).join(10)

    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("REMIXQ_PUBLIC_URL is unset" in line and f":{port}" in line for line in lines)
    assert any(f"http://127.0.0.1:{port}/healthz does not answer" in line for line in lines)


def test_an_unreachable_public_url_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/base"
    settings = load_settings(runware_api_key="rw-key", public_url=url)

    with caplog.at_level(logging.WARNING, logger="remixq.worker"):
        check_webhook_url(settings, wait=0.1).join(10)

    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{url}/healthz does not answer" in line and "REMIXQ_PUBLIC_URL" in line


def test_the_simulator_needs_no_public_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings(runware_api_key=None, public_url=None, receiver_port=free_port())

    with caplog.at_level(logging.WARNING, logger="remixq.worker"):
        check_webhook_url(settings, wait=0.1).join(10)

    assert not any("is unset" in r.getMessage() for r in caplog.records)
